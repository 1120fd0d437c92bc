"""The versioned schema: a full file per version that can start a database,
and numbered delta files that bring an older database up to date.

File names in the schema directory::

    full_001.sql                 the whole schema at version 1
    delta_002_add_things.sql     what turns version 1 into version 2
    delta_002_add_things.postgresql.sql   replaces the file above on PostgreSQL

An empty database gets the newest full file, then the deltas after it; an
older one gets the deltas after its version.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema")

_NAME = re.compile(
    r"^(?P<kind>full|delta)_(?P<version>\d+)(?P<rest>_[A-Za-z0-9_]+)?"
    r"(?:\.(?P<dialect>sqlite|postgresql))?\.sql$"
)


@dataclass(frozen=True)
class SchemaStep:
    """One schema file: what kind, which version it leads to, its statements."""

    kind: str  # "full" or "delta"
    version: int
    name: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class SchemaPlan:
    """Every schema file that applies to one dialect."""

    steps: tuple[SchemaStep, ...]

    @property
    def version(self) -> int:
        """The newest schema version these files describe."""
        return max((step.version for step in self.steps), default=0)

    def steps_from(self, current: int) -> list[SchemaStep]:
        """The steps that bring a database at ``current`` (0: empty) up to date."""
        if current == 0:
            fulls = [step for step in self.steps if step.kind == "full"]
            if not fulls:
                raise ValueError("no full schema file")
            start = max(fulls, key=lambda step: step.version)
            deltas = [s for s in self.steps if s.kind == "delta" and s.version > start.version]
            return [start, *deltas]
        deltas = [s for s in self.steps if s.kind == "delta" and s.version > current]
        expected = current + 1
        for step in deltas:
            if step.version not in (expected - 1, expected):
                raise ValueError(
                    f"schema delta for version {expected} is missing (found {step.name})"
                )
            expected = step.version + 1
        return deltas


def split_statements(text: str) -> tuple[str, ...]:
    """Split an SQL file into statements: ``--`` comment lines are dropped and
    a ``;`` at the end of a line ends a statement."""
    statements: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line.rstrip())
        if stripped.endswith(";"):
            statement = "\n".join(current).strip().rstrip(";").strip()
            if statement:
                statements.append(statement)
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return tuple(statements)


def load_plan(dialect: str, directory: str = SCHEMA_DIR) -> SchemaPlan:
    """Read the schema files of ``directory`` that apply to ``dialect``."""
    chosen: dict[str, tuple[str, str, int, bool]] = {}
    for filename in sorted(os.listdir(directory)):
        match = _NAME.match(filename)
        if match is None:
            continue
        file_dialect = match.group("dialect")
        if file_dialect is not None and file_dialect != dialect:
            continue
        stem = f"{match.group('kind')}_{match.group('version')}{match.group('rest') or ''}"
        specific = file_dialect is not None
        if stem in chosen and chosen[stem][3] and not specific:
            continue
        chosen[stem] = (filename, match.group("kind"), int(match.group("version")), specific)
    steps = []
    for stem in sorted(chosen, key=lambda s: (chosen[s][2], chosen[s][1] != "full", s)):
        filename, kind, version, _ = chosen[stem]
        with open(os.path.join(directory, filename), encoding="utf-8") as handle:
            statements = split_statements(handle.read())
        steps.append(SchemaStep(kind, version, filename, statements))
    return SchemaPlan(tuple(steps))
