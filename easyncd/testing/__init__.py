"""easyncd.testing."""
