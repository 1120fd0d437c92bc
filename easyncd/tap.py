"""``twistd easyncd``: command-line options and the service maker.

    twistd -n easyncd -f /etc/easyncd/easyncd.conf -o server.listen=tcp:8080

A bad configuration stops the daemon with one line naming the file, section,
option and what is wrong (no traceback).
"""
from __future__ import annotations

import sys
from typing import Any

from twisted.python import usage

from easyncd.config import Config, ConfigError, load_config


class Options(usage.Options):
    """Options of ``twistd easyncd``."""

    optParameters = [
        ["config", "f", None, "Configuration file (default /etc/easyncd/easyncd.conf if present)."],
        ["listen", None, None, "Listen on these Twisted endpoints (comma-separated), "
                               "replacing [server] listen."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["overrides"] = []
        self.loaded: Config | None = None

    def opt_option(self, value: str) -> None:
        """Set one option: -o section.option=value (repeatable)."""
        self["overrides"].append(value)

    opt_o = opt_option

    def postOptions(self) -> None:  # noqa: N802 (Twisted hook)
        """Load and check the configuration now, before twistd daemonizes."""
        overrides = list(self["overrides"])
        if self["listen"]:
            overrides.append(f"server.listen={self['listen']}")
        try:
            self.loaded = load_config(self["config"], overrides)
        except ConfigError as exc:
            sys.stderr.write(f"easyncd: {exc}\n")
            raise SystemExit(1) from None


def makeService(options: Options) -> Any:  # noqa: N802 (twistd hook)
    """Build the daemon's service tree (twistd calls this once the reactor is installed)."""
    from twisted.internet import reactor

    from easyncd.service import make_service

    config = options.loaded
    assert config is not None, "postOptions loads the config"
    return make_service(config, reactor)
