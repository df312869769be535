"""Per-epoch training records, saved as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from ..io import atomic_write

__all__ = ["History"]


@dataclass
class History:
    """One dict per epoch: epoch, loss, accuracy, [val_loss, val_accuracy], lr, time,
    examples_per_sec."""

    records: list = field(default_factory=list)

    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list:
        """The column ``key`` across epochs, e.g. ``history["val_accuracy"]``."""
        return [r.get(key) for r in self.records]

    @property
    def columns(self) -> list:
        cols: list = []
        for r in self.records:
            cols += [k for k in r if k not in cols]
        return cols

    def to_json(self, path=None) -> str:
        text = json.dumps({"epochs": self.records}, indent=2)
        if path is not None:
            atomic_write(path, text + "\n")
        return text

    def to_csv(self, path=None) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        w.writeheader()
        w.writerows(self.records)
        if path is not None:
            atomic_write(path, buf.getvalue())
        return buf.getvalue()

    @classmethod
    def from_json(cls, text: str) -> "History":
        return cls(records=list(json.loads(text)["epochs"]))
