"""Combining the watermarks of several input channels (Flink ``StatusWatermarkValve``).

A :class:`WatermarkValve` takes, per input channel, watermarks (epoch ms) and an active / idle
status, and computes the output watermark of the operator or task that reads those channels.
It is pure: no clock, no I/O; channels are identified by any hashable id.

Flink StatusWatermarkValve rules, as implemented here:

- Every channel starts **active** and **aligned** at ``MIN_WATERMARK`` (-2**63). A valve
  expecting ``n`` channels counts the ones not heard from yet that way, so the output stays at
  its minimum until every channel has sent something.
- A channel's watermark only rises: a lower input is ignored. An **idle** channel ignores
  watermarks (it keeps the one it had when it went idle).
- The output watermark is the **min over active, aligned channels**, and it never regresses.
- A channel that goes **idle** is unaligned (left out of the min). If it held the output (its
  watermark equals the output), the output is recomputed from the remaining aligned channels.
- When the last active channel goes idle (**every channel idle**) and it held the output, the
  output advances to the **max** watermark over all channels ("flush").
- A channel that becomes **active** again is aligned at once only if its watermark is at least
  the output; otherwise it stays **unaligned** (left out, not holding the output back) until a
  watermark of its own reaches the output. A status change alone never moves the output.

One addition for bounded inputs (kstream's end of input): a **finished** channel is left out
for good, like an idle channel that never returns and does not count in the all-idle max; when
every channel has finished the output is ``MAX_WATERMARK`` (2**63 - 1). (Flink sends a final
``Long.MAX_VALUE`` watermark instead, which makes a finished input outrun idle siblings;
FLINK-38477 proposes this FINISHED status.)
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

MIN_WATERMARK = -(2**63)
MAX_WATERMARK = 2**63 - 1

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class ChannelStatus:
    """One input channel: its ``watermark`` (epoch ms), ``active`` (False: idle or finished),
    ``aligned`` (counted in the min; only when active) and ``finished`` (ended for good; its
    watermark is then ``MAX_WATERMARK``)."""

    watermark: int = MIN_WATERMARK
    active: bool = True
    aligned: bool = True
    finished: bool = False


class WatermarkValve(Generic[K]):
    """Output watermark of several input channels (Flink ``StatusWatermarkValve``; rules in
    the module docstring).

    Args:
        expected_channels: channels the valve waits for; until that many distinct ids have sent
            a watermark or a status, the missing ones count as active, aligned channels at
            ``MIN_WATERMARK``. Channels beyond this number are accepted; one first heard of
            after the output has moved starts unaligned, like a channel returning behind it.
    """

    def __init__(self, expected_channels: int = 0) -> None:
        self.expected_channels = expected_channels
        self._channels: dict[K, ChannelStatus] = {}
        self._output = MIN_WATERMARK

    @property
    def output(self) -> int:
        """The output watermark (epoch ms; ``MIN_WATERMARK`` before any); never regresses."""
        return self._output

    @property
    def idle(self) -> bool:
        """True when every channel (including the ones not heard from) is idle or finished, and
        not all have finished: Flink's valve then outputs the IDLE watermark status."""
        channels = self._channels.values()
        return (
            len(self._channels) >= self.expected_channels
            and not any(c.active for c in channels)
            and not all(c.finished for c in channels)
        )

    @property
    def finished(self) -> bool:
        """True when every channel (including the ones not heard from) has finished."""
        return len(self._channels) >= self.expected_channels and all(
            c.finished for c in self._channels.values()
        )

    @property
    def channels(self) -> Mapping[K, ChannelStatus]:
        """The channels heard from so far, by id (read them; feed the valve to change them)."""
        return self._channels

    def channel(self, channel: K) -> ChannelStatus:
        """The status of ``channel`` (a fresh active, aligned one at ``MIN_WATERMARK`` if it has
        not been heard from; it is not registered by this call)."""
        status = self._channels.get(channel)
        return ChannelStatus() if status is None else status

    def input_watermark(self, channel: K, watermark: int) -> int:
        """Feed watermark ``watermark`` (epoch ms) of ``channel``; returns the output watermark.

        Flink StatusWatermarkValve.inputWatermark: ignored while the channel is idle or when not
        above the channel's watermark; an unaligned channel is aligned again once its watermark
        reaches the output; then the output becomes the min over aligned channels if higher.
        """
        status = self._register(channel)
        if not status.active or watermark <= status.watermark:
            return self._output
        status.watermark = watermark
        if not status.aligned and watermark >= self._output:
            status.aligned = True
        self._advance_to_min()
        return self._output

    def input_status(self, channel: K, active: bool) -> int:
        """Feed the status of ``channel`` (``active``: True; idle: False); returns the output
        watermark.

        Flink StatusWatermarkValve.inputWatermarkStatus: only a change counts. Active -> idle:
        the channel is unaligned; if it held the output, the output moves to the new min over
        aligned channels, or, when no channel is active any more, to the max over all channels.
        Idle -> active: aligned iff its watermark is at least the output; the output does not
        move.
        """
        status = self._register(channel)
        if status.finished:
            return self._output
        if not active and status.active:
            status.active = False
            status.aligned = False
            if status.watermark == self._output:
                self._after_leaving()
        elif active and not status.active:
            status.active = True
            status.aligned = status.watermark >= self._output
        return self._output

    def finish(self, channel: K) -> int:
        """``channel`` has ended for good (end of input); returns the output watermark.

        It leaves the min as an idle channel does (if it held the output, the output moves to
        the new min over aligned channels, or to the max over the remaining ones when none is
        active), ignores every later input, and never counts in the all-idle max. Once every
        channel has finished, the output is ``MAX_WATERMARK``.
        """
        status = self._register(channel)
        if status.finished:
            return self._output
        held = status.active and status.watermark == self._output
        status.watermark, status.active, status.aligned = MAX_WATERMARK, False, False
        status.finished = True
        if self.finished:
            self._advance(MAX_WATERMARK)
        elif held:
            self._after_leaving()
        return self._output

    # -- internals ----------------------------------------------------------------------------

    def _after_leaving(self) -> None:
        """A channel that held the output left the min: the new min over aligned channels, or
        the max over the unfinished channels when every one is idle (Flink's flush)."""
        if self.idle:
            self._advance(max(c.watermark for c in self._channels.values() if not c.finished))
        else:
            self._advance_to_min()

    def _register(self, channel: K) -> ChannelStatus:
        status = self._channels.get(channel)
        if status is None:  # aligned unless the output has moved (a channel beyond expected)
            status = ChannelStatus(aligned=self._output == MIN_WATERMARK)
            self._channels[channel] = status
        return status

    def _advance_to_min(self) -> None:
        if len(self._channels) < self.expected_channels:
            return  # a channel not heard from holds the min at MIN_WATERMARK
        aligned = [c.watermark for c in self._channels.values() if c.aligned]
        if aligned:
            self._advance(min(aligned))

    def _advance(self, candidate: int) -> None:
        if candidate > self._output:
            self._output = candidate

    # -- state --------------------------------------------------------------------------------

    def restore(self, output: int, channels: Iterable[tuple[K, ChannelStatus]]) -> None:
        """Set the output watermark (epoch ms) and the channels, as saved by the caller."""
        self._output = output
        self._channels = {
            k: ChannelStatus(c.watermark, c.active, c.aligned, c.finished) for k, c in channels
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-able state when channel ids are JSON-able: ``{"output": ms, "channels":
        [[id, watermark_ms, active, aligned, finished], ...]}``."""
        return {
            "output": self._output,
            "channels": [
                [k, c.watermark, c.active, c.aligned, c.finished] for k, c in self._channels.items()
            ],
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`to_state` output."""
        self.restore(
            int(state["output"]),
            (
                (k, ChannelStatus(int(wm), bool(a), bool(al), bool(f)))
                for k, wm, a, al, f in state["channels"]
            ),
        )


__all__ = ["MAX_WATERMARK", "MIN_WATERMARK", "ChannelStatus", "WatermarkValve"]
