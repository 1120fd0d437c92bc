"""easyncd.store."""
