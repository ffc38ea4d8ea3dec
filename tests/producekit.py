"""``kstream produce`` without a broker: :func:`fake_broker` replaces the topic lookup, the
produce loop and the progress bar with a :class:`FakeBroker` recording what would be sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from kstream_cli import produce_cmd

from kstream.tools import loader


class FakeBroker:
    """Stands in for :func:`loader.ensure_topic`, :func:`loader.produce_records` and the bar.

    Attributes:
        sent: every record produced, ``(key, value, timestamp_ms)``.
        partitions: the ``--partitions`` of each topic lookup.
        totals: the total each progress bar was given (None: unknown).
    """

    def __init__(self) -> None:
        self.sent: list[loader.LoadedRecord] = []
        self.partitions: list[int | None] = []
        self.totals: list[int | None] = []

    @property
    def topic_calls(self) -> int:
        """How many topics were looked up (created)."""
        return len(self.partitions)

    def ensure_topic(self, bootstrap: str, topic: str, partitions: int | None) -> int:
        self.partitions.append(partitions)
        return partitions or 1

    def produce_records(
        self,
        bootstrap: str,
        topic: str,
        records: Iterable[loader.LoadedRecord],
        partitions: int | None = None,
        progress_callback: Callable[[int], None] | None = None,
    ) -> int:
        self.sent.extend(records)
        return len(self.sent)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        self.totals.append(total)
        yield lambda done: None

    def values(self) -> list[Any]:
        """The values sent, decoded from JSON."""
        return [orjson.loads(value) for _, value, _ in self.sent]


def fake_broker(monkeypatch: pytest.MonkeyPatch) -> FakeBroker:
    """Patch ``kstream produce`` to send to a new :class:`FakeBroker`."""
    fake = FakeBroker()
    monkeypatch.setattr(loader, "ensure_topic", fake.ensure_topic)
    monkeypatch.setattr(loader, "produce_records", fake.produce_records)
    monkeypatch.setattr(produce_cmd, "_progress", fake.progress)
    return fake
