"""Tests for easyncd.backends.imap."""
