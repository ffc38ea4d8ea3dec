"""The live screen of ``kstream run`` and its plain status line (cli/run_screen.py), rendered to
text: lag, part done, ETA, rates, per-stage watermarks with the holder and the held-back warning,
the joining message, log records above the screen and the final frame."""

from __future__ import annotations

import io
import logging
from typing import Any

from kstream_cli.run_cmd import run_live
from kstream_cli.run_screen import duration, plain_line, plain_status, render
from rich.console import Console

from kstream.runtime.lifecycle import JOINING, StageWatermark, Status

WM = 1_357_380_000_000  # 2013-01-05 10:00:00 UTC
HOLDER = "task flights:2 (topic flights partition 2)"
WARNING = (
    "stage by-origin: watermark held at -inf for 31 s by task flights:2 (topic flights "
    "partition 2: no records for 32 s) while others advanced to 2013-01-05 10:00:00"
)


def status(**changes: Any) -> Status:
    base: dict[str, Any] = dict(
        elapsed_s=20.0, records_in=120_000, records_out=300, late=4, skipped=2, dead_letter=1,
        tasks=8, finished=3, watermarks={}, lag=180_000, checkpoints=7, phase="running",
        done=0.4, eta_s=75.0,
        stages=[
            StageWatermark("flights", WM, None),
            StageWatermark("by-origin", -(2**63), HOLDER, WARNING),
        ],
    )  # fmt: skip
    base.update(changes)
    return Status(**base)


def text(renderable: Any, width: int = 200) -> str:
    console = Console(file=io.StringIO(), record=True, width=width)
    console.print(renderable)
    return console.export_text()


def test_the_screen_of_a_bounded_run() -> None:
    previous = status(elapsed_s=10.0, records_in=20_000, records_out=100)
    shown = text(render(status(), "flights-hourly", previous))
    assert "kstream run flights-hourly · running · 0:20" in shown
    assert "in 120,000 (10,000/s) · out 300 (20/s)" in shown  # rates since the previous
    assert "180,000 records behind · 40.0 % done · ETA 1:15" in shown
    assert "late 4 · skipped 2 · dead-lettered 1" in shown
    assert "3/8 done · checkpoints 7" in shown
    rows = {line.split()[0]: line.split(None, 1)[1] for line in shown.splitlines() if line}
    assert rows["flights"].startswith("2013-01-05 10:00:00")
    assert rows["by-origin"].split() == ["-inf", *HOLDER.split()]
    assert f"warning: {WARNING}" in " ".join(shown.split())


def test_an_unbounded_run_shows_the_lag_only() -> None:
    shown = text(render(status(done=None, eta_s=None, lag=12), "p"))
    assert "12 records behind" in shown and "done" not in shown.split("records behind")[1][:5]
    assert "ETA" not in shown
    unknown = text(render(status(lag=None, done=None, eta_s=None), "p"))
    assert "unknown yet (no end offsets)" in unknown


def test_joining_the_group_is_said() -> None:
    shown = text(render(status(phase=JOINING, stages=[]), "flights-hourly"))
    assert "joining the consumer group ..." in shown
    assert "records" not in shown


def test_the_plain_status_line_has_lag_part_done_and_eta() -> None:
    assert plain_line(status()) == (
        "[   20.0s] running: in=120000 out=300 late=4 skipped=2 dead_letter=1 tasks=3/8 "
        "checkpoints=7 lag=180000 done=40.0% eta=1:15"
    )
    assert plain_line(status(lag=None, done=None, eta_s=None)).endswith("checkpoints=7")
    lines: list[str] = []
    show = plain_status(lines.append, every_s=5.0)
    for t in (0.0, 1.0, 4.9, 5.0, 9.0, 10.5):
        show(status(elapsed_s=t))
    assert [line[:10] for line in lines] == ["[    0.0s]", "[    5.0s]", "[   10.5s]"]


def test_duration() -> None:
    assert [duration(s) for s in (0, 59.4, 61, 3_600, 3_725)] == [
        "0:00", "0:59", "1:01", "1:00:00", "1:02:05",
    ]  # fmt: skip


class FakeRunner:
    """Calls ``on_status`` like the runner, logs a warning in between, returns the final."""

    on_status: Any = None

    def run(self) -> Status:
        self.on_status(status(elapsed_s=1.0, records_in=10))
        logging.getLogger("kstream.runtime.watermark").warning("held back: %s", "flights:2")
        self.on_status(status(elapsed_s=2.0, records_in=20))
        return status(
            elapsed_s=3.0, records_in=336_776, records_out=7_000, phase="finished", lag=0,
            done=1.0, eta_s=0.0, finished=8, stages=[StageWatermark("flights", 2**63 - 1)],
        )  # fmt: skip


def test_logs_print_above_the_screen_whose_last_frame_is_final() -> None:
    console = Console(file=io.StringIO(), record=True, width=160)
    root = logging.getLogger()
    before = root.handlers[:]
    final = run_live(FakeRunner(), console, "flights-hourly")  # type: ignore[arg-type]
    assert root.handlers == before  # the root logger's handlers are back
    assert final.records_in == 336_776
    shown = console.export_text()
    log_at = shown.index("kstream.runtime.watermark: held back: flights:2")
    last = shown[shown.rindex("kstream run flights-hourly") :]
    assert log_at < shown.rindex("kstream run flights-hourly")
    assert "finished · 0:03" in last
    assert "in 336,776 (112,259/s) · out 7,000 (2,333/s)" in last  # over the whole run
    assert "0 records behind · 100.0 % done" in last and "ETA" not in last
    assert "8/8 done" in last
    assert "+inf" in last
