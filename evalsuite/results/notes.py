"""The footer of a table: protocols, image counts, record ids, marks and caveats.

Builders call ``use`` for every record a cell comes from; the footer then names exactly the
protocols and records behind the numbers shown, nothing more.
"""

from __future__ import annotations

from typing import Any, Mapping

from evalsuite.results.protocol import Protocol, protocol_of
from evalsuite.results.identity import distinct_labels, variant_of
from evalsuite.results.store import images_of
from evalsuite.results.tablemodel import MARKS


class Notes:
    """Collects what a table's footer must say while the table is built."""

    def __init__(self) -> None:
        self.protocols: dict[str, Protocol] = {}
        self.records: dict[str, Mapping[str, Any]] = {}
        self.measured: dict[str, Mapping[str, Any]] = {}  # records behind metric cells
        self.marks: set[str] = set()
        self.reasons: dict[str, str] = {}  # column label -> why it cannot be measured
        self.lines: list[str] = []

    def use(self, record: Mapping[str, Any], metric: bool = True) -> None:
        """A cell shows a number from ``record`` (a metric value when ``metric``)."""
        self.records[record["run_id"]] = record
        if metric:
            self.measured[record["run_id"]] = record
            self.plabel(protocol_of(record))

    def plabel(self, protocol: Protocol) -> str:
        """P1, P2, ... in order of first use."""
        if protocol.key not in self.protocols:
            self.protocols[protocol.key] = protocol
        return f"P{list(self.protocols).index(protocol.key) + 1}"

    def label_of_key(self, key: str) -> str:
        return f"P{list(self.protocols).index(key) + 1}"

    def mark(self, mark: str, column: str | None = None, reason: str | None = None) -> None:
        self.marks.add(mark)
        if column and reason:
            self.reasons[column] = reason

    def add(self, line: str) -> None:
        if line not in self.lines:
            self.lines.append(line)

    def render(self) -> list[str]:
        """Footer lines: protocol(s), images, notes, marks, record ids."""
        out: list[str] = []
        if len(self.protocols) == 1:
            out.append(f"Protocol: {next(iter(self.protocols.values())).describe()}.")
        for i, p in enumerate(self.protocols.values()):
            if len(self.protocols) > 1:
                out.append(f"Protocol P{i + 1}: {p.describe()}.")
        out.append(self._images())
        out += self.lines
        for mark in sorted(self.marks):
            out.append(f"{mark}: {MARKS[mark]}.")
        for column, reason in self.reasons.items():
            out.append(f"{column}: {reason}")
        ids = ", ".join(sorted(self.records)) or "none"
        out.append(f"Records ({len(self.records)}): {ids}.")
        return out

    def folds(self) -> dict[str, str]:
        """Protocol and record-id footer lines -> their one-line summaries (HTML shows the
        summary and folds the full line under it)."""
        several = len(self.protocols) > 1
        ids = ", ".join(sorted(self.records)) or "none"
        folds = {f"Records ({len(self.records)}): {ids}.": f"Records: {len(self.records)} (ids)"}
        return folds | {(f"Protocol P{i + 1}: " if several else "Protocol: ") + f"{p.describe()}.":
                (f"Protocol P{i + 1}: " if several else "Protocol: ") + p.summary()
                for i, p in enumerate(self.protocols.values())}

    def _images(self) -> str:
        """Images behind the measured cells, per protocol (a protocol fixes the prompt set)."""
        if not self.measured:
            return "Protocol and images: no measured cell."
        parts = []
        for i, key in enumerate(self.protocols):
            measured = [r for r in self.measured.values() if protocol_of(r).key == key]
            variants = [variant_of(r) for r in measured]
            unique = list(dict.fromkeys(variants))
            names = dict(zip(unique, distinct_labels(unique)))
            counts = {names[v]: images_of(r) for v, r in zip(variants, measured)}
            text = (f"{next(iter(counts.values()))} per variant" if len(set(counts.values())) == 1
                    else ", ".join(f"{n} ({v})" for v, n in sorted(counts.items())))
            parts.append(f"P{i + 1}: {text}" if len(self.protocols) > 1 else text)
        return "Images: " + "; ".join(parts) + "."
