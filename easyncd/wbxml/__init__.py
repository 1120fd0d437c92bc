"""easyncd.wbxml."""
