"""Rendered SQL kept on disk between processes.

Rendering the load and refresh statements through sqlglot (parse, copy, rewrite, generate) costs
about a second each time a warehouse is opened (measured: 1.1-1.9 s of a 1M-item load and refresh
on a 2-core machine), and every task process opens one to run the very statements the last one ran.
So the rendered text is kept in one JSON file per fingerprint of everything it depends on: sqlglot's
version, the dialect, the catalogue (every table, column and refresh rule, contracts included), every
file under sql/ and the renderer's own source. Change any of them and the fingerprint is new: a stale
rendering is never read, it is only left behind. A cache that cannot be read or written costs time,
never a result: rendering happens again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import sqlglot

log = logging.getLogger(__name__)


def fingerprint(dialect: str, catalogue, code: Iterable[Path]) -> str:
    h = hashlib.sha256(f"{sqlglot.__version__}\0{dialect}\0{sorted(catalogue.tables.items())!r}\0"
                       f"{catalogue.security!r}".encode())
    for path in sorted({*(p for p in Path(catalogue.root).rglob("*") if p.is_file()), *map(Path, code)}):
        h.update(f"\0{path}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:32]


class RenderedSql:
    """Statements rendered for a key (a tuple of names), in memory and, with a folder, on disk."""

    def __init__(self, folder: str | Path | None = None, name: str | None = None):
        self._entries: dict[str, list[str]] = {}
        self.path = Path(folder) / f"{name}.json" if folder is not None and name else None
        if self.path is not None and self.path.exists():
            try:
                self._entries = json.loads(self.path.read_text())
            except (OSError, ValueError) as e:
                log.warning("rendered SQL cache %s unreadable (%s): rendering again", self.path, e)

    @staticmethod
    def _name(key: tuple) -> str:
        return "\x1f".join(map(str, key))

    def get(self, key: tuple) -> list[str] | None:
        return self._entries.get(self._name(key))

    def put(self, key: tuple, statements: list[str]) -> list[str]:
        self._entries[self._name(key)] = statements
        if self.path is not None:
            try:  # whole file, atomically: concurrent tasks each leave a complete one
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".rendered-")
                with os.fdopen(fd, "w") as f:
                    json.dump(self._entries, f)
                os.replace(tmp, self.path)
            except OSError as e:  # said once; this process keeps its renderings in memory
                log.warning("rendered SQL cache %s not written (%s)", self.path, e)
                self.path = None
        return statements
