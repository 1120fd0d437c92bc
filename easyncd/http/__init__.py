"""easyncd.http."""
