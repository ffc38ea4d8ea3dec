"""Helpers for the window tests: a one-window pipeline run through the public PipelineDriver.

Records are ``{"ts": <event time ms>, "k": <key>, "v": <value>}`` sent with the Kafka key ``k``
(no ``key_by``: one stage, the source task runs the window). The default watermark bound is so
large that records never move the watermark: tests move it with :meth:`Harness.watermark`.
"""

from __future__ import annotations

from typing import Any

from kstream.testing import OutputRecord, PipelineDriver

#: records never advance the watermark; only Harness.watermark does
MANUAL = "{max_out_of_orderness: 100000d, max_future_skew: 100000d}"


def pipeline_yaml(
    window: str,
    *,
    watermark: str = MANUAL,
    source_extra: str = "",
    operators: str = "",
    event_time: str = "    event_time: ts\n",
) -> str:
    """Pipeline text: source ``in`` -> ``operators`` -> window ``w`` (flow-style ``window``
    body) -> sink ``out``."""
    return (
        "pipeline: t\n"
        "sources:\n"
        "  - topic: in\n"
        f"{event_time}"
        f"    watermark: {watermark}\n"
        f"{source_extra}"
        "operators:\n"
        f"{operators}"
        "  - id: w\n"
        f"    window: {window}\n"
        "sinks:\n"
        "  - topic: out\n"
    )


class Harness:
    """A driver for one window pipeline, reading the sink incrementally.

    Args:
        window: the flow-style window body, e.g. ``{type: tumbling, size: 10, aggregate: ...}``.
        partitions: source partitions.
        kwargs: passed to :func:`pipeline_yaml`.
    """

    def __init__(self, window: str, partitions: int = 1, **kwargs: Any) -> None:
        self.driver = PipelineDriver.from_yaml(pipeline_yaml(window, **kwargs), partitions)
        self._read = 0

    def send(self, ts: int, key: str = "a", v: Any = 1, partition: int = 0) -> None:
        """Send ``{"ts": ts, "k": key, "v": v}`` with Kafka key ``key``."""
        self.driver.send("in", {"ts": ts, "k": key, "v": v}, key=key, partition=partition)

    def watermark(self, wm: int, partition: int = 0) -> None:
        """Set the source partition's watermark (it never regresses)."""
        self.driver.watermark("in", wm, partition)

    def new(self) -> list[OutputRecord]:
        """Sink records written since the last call."""
        out = self.driver.output("out")
        fresh = out[self._read :]
        self._read = len(out)
        return fresh

    def fired(self) -> list[tuple[Any, ...]]:
        """New results as ``(key, window_start, window_end, n, timestamp_ms)`` (``n``: the
        ``n`` aggregate, None if absent)."""
        return [
            (
                r.value["key"],
                r.value["window_start"],
                r.value["window_end"],
                r.value.get("n"),
                r.timestamp_ms,
            )
            for r in self.new()
        ]

    def open_windows(self) -> int:
        """Windows held by the source task's operators."""
        return sum(task.open_windows() for task in self.driver.tasks.values())

    @property
    def task(self) -> Any:
        """The task of source partition 0."""
        return self.driver.tasks[("in", 0)]
