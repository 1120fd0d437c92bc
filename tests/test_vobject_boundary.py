"""vobject is wrapped in one package: nothing outside
easyncd/backends/groupware/vobj/ may import it."""
from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import TestCase

import easyncd

PACKAGE = Path(easyncd.__file__).resolve().parent
ALLOWED = PACKAGE / "backends" / "groupware" / "vobj"


def vobject_imports(source: str) -> list[int]:
    """Line numbers of imports of vobject (or a vobject submodule)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            if any(a.name == "vobject" or a.name.startswith("vobject.") for a in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "vobject" or node.module.startswith("vobject."):
                lines.append(node.lineno)
    return lines


class VobjectBoundaryTests(TestCase):
    """The boundary holds."""

    def test_only_vobj_imports_vobject(self) -> None:
        offenders = []
        checked = 0
        for path in sorted(PACKAGE.rglob("*.py")):
            checked += 1
            if ALLOWED in path.parents:
                continue
            source = path.read_text(encoding="utf-8")
            lines = vobject_imports(source)
            if "importlib" in source and "vobject" in source:
                lines.append(0)
            if lines:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{lines}")
        self.assertGreater(checked, 10)
        self.assertEqual(offenders, [])

    def test_the_vcard_module_does_import_it(self) -> None:
        source = (ALLOWED / "vcard.py").read_text(encoding="utf-8")
        self.assertTrue(vobject_imports(source))

    def test_the_detector(self) -> None:
        self.assertEqual(vobject_imports("import os\nimport vobject.base as b\n"), [2])
        self.assertEqual(vobject_imports("from vobject import vcard\n"), [1])
        self.assertEqual(vobject_imports("from .vobject import x\nimport vobjectx\n"), [])
