"""Error policies: what a task does with a bad record (``docs/errors.md``).

The source, every operator and every sink has an ``on_error`` policy; operators and sinks
without one use the policy of the source upstream of them (the first in declaration order when
several are). The node executor (:mod:`kstream.runtime.executor`) applies them around every
node. ``fail`` stops the job with :class:`BadRecordFailure` (the runner
aborts the open transaction, so committed offsets stay before the record); ``skip`` counts and
logs; ``dead_letter`` writes the record, with headers saying what went wrong where, to a
dead-letter topic through the task's ``emit``, inside the task's checkpoint transaction.

Errors are handled where they happen: a failing step drops its record, a failing window leaves
its state untouched, a failing sink skips that sink. So a record derived from others (a window
result) that fails downstream never interrupts the firing of the other windows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from kstream.errors import RecordError
from kstream.pipeline.spec import (
    ErrorPolicy,
    SourceSpec,
)

log = logging.getLogger("kstream.errors")

H_CLASS = "kstream.error.class"
H_MESSAGE = "kstream.error.message"
H_STAGE = "kstream.error.stage"
H_OPERATOR = "kstream.error.operator"
H_TOPIC = "kstream.source.topic"
H_PARTITION = "kstream.source.partition"
H_OFFSET = "kstream.source.offset"
H_TIMESTAMP = "kstream.source.timestamp"
#: Longest error message written to a header.
MESSAGE_LIMIT = 2_000
#: A task logs its first LOG_FIRST skipped records, then every LOG_EVERY-th.
LOG_FIRST = 20
LOG_EVERY = 1_000

Headers = list[tuple[str, bytes]]
Emit = Callable[[str, bytes | None, bytes | None, int, Headers | None, int | None], None]


class BadRecordFailure(RecordError):
    """A bad record under ``on_error: fail``: stops the job. It names the record's topic,
    partition and offset (the offset is unknown for a window result) and the reason."""

    def _text(self) -> str:
        offset = "" if self.offset is None else f"@{self.offset}"
        return f"bad record at {self.topic}[{self.partition}]{offset} ({self.stage}): {self.reason}"


@dataclass(frozen=True)
class Policy:
    """A resolved policy: ``mode``, its dead-letter ``topic`` and who owns it (``source``, an
    operator id or ``sink:<name>``)."""

    mode: ErrorPolicy
    topic: str | None
    owner: str


class _Owner(Protocol):
    @property
    def on_error(self) -> ErrorPolicy | None: ...

    @property
    def dead_letter_topic(self) -> str | None: ...


def resolve(owner: _Owner, name: str, source: SourceSpec) -> Policy:
    """The policy of an operator or sink: its own ``on_error``, else the source's."""
    if owner.on_error is None:
        return Policy(source.on_error, source.dead_letter_topic, name)
    return Policy(owner.on_error, owner.dead_letter_topic, name)


def source_policy(source: SourceSpec) -> Policy:
    """The source's own policy (deserialize and timestamp errors)."""
    return Policy(source.on_error, source.dead_letter_topic, "source")


@dataclass(frozen=True)
class Origin:
    """What a dead letter carries: the record's original ``key``/``value`` bytes and where it
    was read (``offset`` None for a record derived from others, e.g. a window result)."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int | None
    timestamp: int


def message_origin(msg: Any, topic: str, partition: int) -> Origin:
    """The :class:`Origin` of a consumed record."""
    return Origin(msg.key(), msg.value(), topic, partition, msg.offset(), msg.timestamp()[1])


def derived_origin(key: Any, value: Any, ts: int, topic: str, partition: int) -> Origin:
    """The :class:`Origin` of a derived record (its key and value as JSON, best effort)."""
    return Origin(_json(key), _json(value), topic, partition, None, ts)


def _json(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return repr(value).encode("utf-8", "replace")


class ErrorRouter:
    """Applies policies for one task.

    Args:
        emit: the task's output callable (dead letters join its transaction).
        counters: the task's counters (``skipped``, ``dead_letter``).
    """

    def __init__(self, emit: Emit, counters: dict[str, int]) -> None:
        self.emit = emit
        self.counters = counters

    def handle(self, exc: RecordError, policy: Policy, origin: Origin) -> None:
        """Apply ``policy`` to the record ``origin`` that failed with ``exc``.

        Raises:
            BadRecordFailure: the policy is ``fail``, or the dead letter cannot be written.
        """
        reason = exc.reason if policy.owner == "source" else f"{_owner(policy)}: {exc.reason}"
        if policy.mode == "fail":
            raise _failure(exc, reason, origin) from exc
        if policy.mode == "skip":
            self.counters["skipped"] += 1
            n = self.counters["skipped"]
            if n <= LOG_FIRST or n % LOG_EVERY == 0:
                log.warning("skipped %s (%d skipped so far)", _failure(exc, reason, origin), n)
            return
        headers = dead_letter_headers(exc, policy.owner, origin)
        try:
            self.emit(
                policy.topic or "",
                origin.key,
                origin.value,
                max(origin.timestamp, 0),
                headers,
                None,
            )
        except RecordError as failed:  # e.g. the record is too large for the dead-letter topic
            why = f"{reason}; writing it to {policy.topic} failed too: {failed.reason}"
            raise _failure(failed, why, origin) from failed
        self.counters["dead_letter"] += 1


def _owner(policy: Policy) -> str:
    if policy.owner.startswith("sink:"):
        return f"sink '{policy.owner[5:]}'"
    return f"operator '{policy.owner}'"


def _failure(exc: RecordError, reason: str, origin: Origin) -> BadRecordFailure:
    return BadRecordFailure(exc.stage, reason, origin.topic, origin.partition, origin.offset)


def error_class(exc: RecordError) -> str:
    """The class of the underlying error (``JSONDecodeError``, ``ZeroDivisionError``, ...), or
    ``RecordError`` when kstream itself rejected the record."""
    cause = exc.__cause__
    while isinstance(cause, RecordError) and cause.__cause__ is not None:
        cause = cause.__cause__
    return type(cause).__name__ if cause is not None else type(exc).__name__


def dead_letter_headers(exc: RecordError, owner: str, origin: Origin) -> list[tuple[str, bytes]]:
    """The headers of a dead letter (``docs/errors.md``)."""
    headers = [
        (H_CLASS, error_class(exc).encode()),
        (H_MESSAGE, exc.reason[:MESSAGE_LIMIT].encode("utf-8", "replace")),
        (H_STAGE, exc.stage.encode()),
        (H_OPERATOR, owner.encode("utf-8", "replace")),
        (H_TOPIC, origin.topic.encode()),
        (H_PARTITION, str(origin.partition).encode()),
    ]
    if origin.offset is not None:
        headers.append((H_OFFSET, str(origin.offset).encode()))
    headers.append((H_TIMESTAMP, str(origin.timestamp).encode()))
    return headers


# -- the executor's side -------------------------------------------------------------------

#: ``(error, policy, derived, key, value)``: handle a bad record (raises under ``fail``).
OnBad = Callable[[RecordError, Policy, bool, Any, Any], None]
