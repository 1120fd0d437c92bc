"""The error the admin commands raise for problems the operator can fix."""
from __future__ import annotations


class AdminError(Exception):
    """An expected failure: its message is printed as one line, exit status 1."""
