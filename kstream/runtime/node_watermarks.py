"""The watermark of each node of a task that reads several topics (Flink keeps one per operator:
a ``StatusWatermarkValve`` at each multi-input node).

A node's watermark is the output of a valve over the task inputs that feed it (through any
path inside the stage): a node fed by one input follows that input's watermark alone, a node
behind a union of two inputs the min of both (the valve rules: idle and ended inputs left out).
Nodes fed by the same inputs share one valve.
"""

from __future__ import annotations

from collections.abc import Mapping

from kstream.time.valve import WatermarkValve


class NodeWatermarks:
    """Valves per set of feeding inputs.

    Args:
        feeds: node id -> the indexes of the task inputs that feed it.
    """

    def __init__(self, feeds: Mapping[str, frozenset[int]]) -> None:
        self.feeds = dict(feeds)
        self.valves: dict[frozenset[int], WatermarkValve[int]] = {
            inputs: WatermarkValve(len(inputs)) for inputs in set(self.feeds.values())
        }

    def watermark(self, node_id: str) -> int:
        """The watermark (epoch ms) of ``node_id``."""
        return self.valves[self.feeds[node_id]].output

    def input_watermark(self, index: int, watermark: int) -> None:
        """Input ``index``'s watermark rose to ``watermark`` (epoch ms)."""
        for inputs, valve in self.valves.items():
            if index in inputs:
                valve.input_watermark(index, watermark)

    def input_status(self, index: int, active: bool) -> None:
        """Input ``index`` went idle (``active`` False) or became active again."""
        for inputs, valve in self.valves.items():
            if index in inputs:
                valve.input_status(index, active)

    def finish(self, index: int) -> None:
        """Input ``index`` has ended."""
        for inputs, valve in self.valves.items():
            if index in inputs:
                valve.finish(index)
