"""easyncd.backends.imap."""
