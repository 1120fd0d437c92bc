"""The shipped etc/easyncd.conf is the rendered default and loads."""
from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from easyncd.config import default_values, load_config, render_default_config

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "easyncd.conf")


class ShippedConfigTests(TestCase):
    """etc/easyncd.conf stays equal to render_default_config()."""

    def test_equals_rendered_defaults(self) -> None:
        with open(SHIPPED, encoding="utf-8") as handle:
            text = handle.read()
        self.assertEqual(
            text, render_default_config(),
            "etc/easyncd.conf is stale: regenerate it with easyncd-admin config show-defaults",
        )

    def test_loads_to_the_defaults(self) -> None:
        config = load_config(SHIPPED)
        self.assertEqual(config.path, SHIPPED)
        for section, options in default_values().items():
            for name, value in options.items():
                self.assertEqual(config[section][name], value, f"[{section}] {name}")
