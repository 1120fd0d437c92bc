"""easyncd.admin."""
