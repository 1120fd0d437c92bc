"""easyncd.protocol."""
