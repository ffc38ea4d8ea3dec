"""A source's ``metadata:`` fields: values set on each record from its Kafka record (Flink's
Kafka connector ``METADATA`` columns; docs/pipeline.md, "Sources").

``metadata_attacher(((field, what), ...))`` gives a function ``attach(value, message, key)``
returning a copy of the decoded ``value`` (a dict) with each ``field`` set to the message's
``topic`` (str), ``partition`` (int), ``offset`` (int), ``timestamp`` (the Kafka timestamp,
epoch ms), ``timestamp-type`` (``"CreateTime"``, ``"LogAppendTime"`` or ``"NoTimestampType"``,
Flink's names), ``leader-epoch`` (int, None when the broker gave none) or ``key`` (the key
decoded by the source's ``key_format``), or None when no field is declared. It runs before
the event time is read, so ``event_time`` may name such a field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kstream.errors import RecordError
from kstream.io.key_fields import ReadKey
from kstream.pipeline.spec_base import RecordMetadata

__all__ = ["Attach", "metadata_attacher"]

#: Kafka's timestamp types (``message.timestamp()[0]``: 1 create time, 2 log append time) by
#: the names of Flink's ``timestamp-type`` metadata column
TIMESTAMP_TYPES = {1: "CreateTime", 2: "LogAppendTime"}
#: ``attach(value, message, key) -> value``
Attach = Callable[[Any, Any, Any], Any]
_READERS: dict[RecordMetadata, Callable[[Any, Any], Any]] = {
    "topic": lambda m, _key: m.topic(),
    "partition": lambda m, _key: m.partition(),
    "offset": lambda m, _key: m.offset(),
    "timestamp": lambda m, _key: m.timestamp()[1],
    "timestamp-type": lambda m, _key: TIMESTAMP_TYPES.get(m.timestamp()[0], "NoTimestampType"),
    "leader-epoch": lambda m, _key: m.leader_epoch(),
    "key": lambda _m, key: key,
}


def metadata_attacher(
    fields: tuple[tuple[str, RecordMetadata], ...], read_key: ReadKey | None = None
) -> Attach | None:
    """The function setting ``fields`` on a record (see the module docstring), after the
    source's key fields (``read_key``: :func:`~kstream.io.key_fields.key_reader`), or None
    when there are neither.

    The function raises :class:`~kstream.errors.RecordError` (stage ``deserialize``) for a
    value that is not an object: its fields cannot be set.
    """
    if not fields:
        return None if read_key is None else lambda value, _message, key: read_key(value, key)
    readers = [(name, _READERS[what]) for name, what in fields]

    def attach(value: Any, message: Any, key: Any) -> Any:
        if not isinstance(value, dict):
            what = type(value).__name__
            raise RecordError("deserialize", f"metadata fields need an object value, got {what}")
        out = dict(value) if read_key is None else read_key(value, key)
        for name, read in readers:
            out[name] = read(message, key)
        return out

    return attach
