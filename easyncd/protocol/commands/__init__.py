"""easyncd.protocol.commands."""
