"""What ``kstream reset`` will do, and the parsing of its ``--to-offsets`` file and
``--to-datetime`` value. Pure logic: nothing here talks to Kafka or touches the disk (except
reading the offsets file).

**The offsets file** (``--to-offsets FILE``) is the CSV that Kafka's ``kafka-consumer-groups
--reset-offsets --export`` writes: one line ``topic,partition,offset`` per partition (the offset
of the next record to read). Blank lines and ``#`` comments (whole lines, or after a line's
values) are allowed; spaces around values are ignored. Every partition of every source topic
of the pipeline must have exactly one line: a partition left out is an error rather than kept at
its committed offset, because the reset deletes the consumer group, and with it every offset not
in the file (Kafka's own tool also only resets the partitions a file lists, but it keeps the
group). A topic that is not a source of the pipeline (a broadcast table, read without a group,
included) and a partition the topic does not have are errors too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kstream.errors import UsageError

#: ``(topic, partition)``
TopicPartitionKey = tuple[str, int]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: How an offsets file line looks (for error messages).
OFFSETS_LINE = "topic,partition,offset"


@dataclass(frozen=True)
class OffsetChange:
    """The reset of one source partition: the group's ``committed`` offset now (None: nothing
    committed) and the ``new`` one; ``start`` and ``end`` are the partition's first offset in
    the log and the offset after its last record (None: not known)."""

    topic: str
    partition: int
    committed: int | None
    new: int
    start: int | None = None
    end: int | None = None

    @property
    def outside_log(self) -> bool:
        """True when ``new`` is outside ``[start, end]``: a run then starts where
        ``auto.offset.reset`` says (the earliest offset, kstream's default)."""
        below = self.start is not None and self.new < self.start
        above = self.end is not None and self.new > self.end
        return below or above


@dataclass(frozen=True)
class ResetPlan:
    """Everything a reset changes, in the order it is done.

    Attributes:
        pipeline: the pipeline's name; ``group``: the consumer group id (also the prefix of the
            internal topics and the name of the local state directory).
        target: what the new offsets are, for people (``earliest``, ``2013-01-01T05:00:00Z``,
            ``the offsets in FILE``).
        offsets: one :class:`OffsetChange` per source partition, by topic then partition.
        topics: the internal topics to delete (those that exist on the broker).
        state_root: the job's local state directory, ``<state-dir>/<group>``.
        state_dirs: the directories under ``state_root`` to delete (tasks, broadcast tables,
            savepoint snapshots); ``state_bytes``: their size in bytes.
    """

    pipeline: str
    group: str
    target: str
    offsets: tuple[OffsetChange, ...]
    topics: tuple[str, ...]
    state_root: Path
    state_dirs: tuple[Path, ...] = ()
    state_bytes: int = 0

    def new_offsets(self) -> dict[TopicPartitionKey, int]:
        """The offsets to commit: ``(topic, partition) -> next offset``."""
        return {(c.topic, c.partition): c.new for c in self.offsets}


def parse_datetime_ms(text: str) -> int:
    """``--to-datetime``: an ISO 8601 date or date-time (``2013-01-01``,
    ``2013-01-01T05:00:00Z``, ``2013-01-01 05:00:00.250+01:00``) as epoch milliseconds. Without
    a UTC offset the time is UTC.

    Raises:
        UsageError: ``text`` is not ISO 8601, or is before 1970-01-01T00:00:00Z.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--to-datetime {text!r} is not an ISO 8601 date-time — write e.g. "
            "2013-01-01T05:00:00Z or 2013-01-01T06:00:00+01:00 (without an offset: UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    if ms < 0:
        raise UsageError(
            f"--to-datetime {text!r} is before 1970-01-01T00:00:00Z; Kafka record times start "
            "there — give a later time, or use --to-earliest"
        )
    return ms


def read_offsets_file(
    path: Path, partitions: Mapping[str, int], broadcast: tuple[str, ...] = ()
) -> dict[TopicPartitionKey, int]:
    """The offsets of ``--to-offsets FILE`` (see the module docstring for the format).

    Args:
        path: the file.
        partitions: partition count of each source topic of the pipeline.
        broadcast: the topics of its broadcast tables (named in the error for one of them).

    Returns:
        ``(topic, partition) -> next offset`` for every partition of every source topic.

    Raises:
        UsageError: the file cannot be read, or a line is wrong (``FILE:LINE: what — fix``),
            or partitions are missing (named).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read the offsets file {path}: {exc} — give a text file of {OFFSETS_LINE} lines"
        ) from exc
    return parse_offsets(text, str(path), partitions, broadcast)


def parse_offsets(
    text: str, where: str, partitions: Mapping[str, int], broadcast: tuple[str, ...] = ()
) -> dict[TopicPartitionKey, int]:
    """:func:`read_offsets_file` on the file's ``text``; ``where`` names it in errors.

    Raises:
        UsageError: as :func:`read_offsets_file`.
    """
    found: dict[TopicPartitionKey, int] = {}
    lines: dict[TopicPartitionKey, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()  # Kafka topic names never contain '#'
        if not line:
            continue
        topic, partition, offset = _fields(line, f"{where}:{number}", partitions, broadcast)
        key = (topic, partition)
        if key in found:
            raise UsageError(
                f"{where}:{number}: {topic} partition {partition} is listed again (first at "
                f"line {lines[key]}) — keep one line per partition"
            )
        found[key], lines[key] = offset, number
    _check_complete(found, where, partitions)
    return found


def _fields(
    line: str, where: str, partitions: Mapping[str, int], broadcast: tuple[str, ...]
) -> tuple[str, int, int]:
    """``(topic, partition, offset)`` of one line, checked against the pipeline's sources."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 3:
        raise UsageError(
            f"{where}: expected {OFFSETS_LINE}, got {line!r} — write one partition per line, "
            "e.g. flights,0,1234"
        )
    topic = parts[0]
    partition = _whole_number(parts[1], "partition", where)
    offset = _whole_number(parts[2], "offset", where)
    if topic not in partitions:
        sources = ", ".join(sorted(partitions)) or "none"
        why = (
            "a broadcast table, read whole without a consumer group: it has no offsets"
            if topic in broadcast
            else "not a source topic of the pipeline"
        )
        raise UsageError(
            f"{where}: topic {topic!r} is {why} — list only its source topics ({sources})"
        )
    count = partitions[topic]
    if partition >= count:
        raise UsageError(
            f"{where}: {topic} has {count} partitions (0 to {count - 1}), not partition "
            f"{partition} — fix the partition number"
        )
    return topic, partition, offset


def _whole_number(text: str, name: str, where: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise UsageError(
            f"{where}: the {name} {text!r} is not a whole number >= 0 — write {OFFSETS_LINE}, "
            "e.g. flights,0,1234"
        )
    return int(text)


def _check_complete(
    found: Mapping[TopicPartitionKey, int], where: str, partitions: Mapping[str, int]
) -> None:
    """Every partition of every source topic has a line."""
    missing = []
    for topic, count in sorted(partitions.items()):
        gaps = [str(p) for p in range(count) if (topic, p) not in found]
        if gaps:
            missing.append(f"{topic} partition{'s' if len(gaps) > 1 else ''} {', '.join(gaps)}")
    if missing:
        raise UsageError(
            f"{where}: no offset for {'; '.join(missing)} — the reset deletes the group's "
            f"offsets, so give a {OFFSETS_LINE} line for every partition of every source topic"
        )
