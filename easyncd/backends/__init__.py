"""easyncd.backends."""
