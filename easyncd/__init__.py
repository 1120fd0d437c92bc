"""easyncd: an Exchange ActiveSync server on Twisted."""

__version__ = "0.1.0.dev0"
