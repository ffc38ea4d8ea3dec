"""The producer of one task (transactional under exactly-once): a fast ``emit``, the
transaction calls bounded by a deadline, fencing translated into
:class:`~kstream.errors.TaskMigratedError`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaException,
    TopicPartition,
)

from kstream import faults
from kstream.errors import (
    BrokerError,
    KStreamError,
    RecordError,
    TaskMigratedError,
    TransactionError,
)
from kstream.io.clients import is_fenced, is_too_large, new_producer, producer_config, translate
from kstream.io.deadline import DeadlineExceeded, call_with_deadline
from kstream.time.timestamps import H_TIME, MAX_FUTURE_TS_MS

log = logging.getLogger("kstream.io.task_producer")

#: Seconds a transactional call may run past its own timeout before its producer is abandoned.
CALL_GRACE_S = 10.0


class TaskProducer:
    """The producer of one task (transactional under exactly-once) with a fast ``emit``.

    ``emit(topic, key, value, ts, headers, partition)`` produces one record with Kafka timestamp
    ``ts`` (epoch ms). A time Kafka cannot store as a timestamp (zero or negative, or more
    than :data:`MAX_FUTURE_TS_MS` ahead of the wall clock) is written as the produce time, with
    the exact time in the header ``kstream.ts`` (read back by
    :func:`kstream.time.timestamps.record_time_ms`).

    Args:
        conf: producer configuration (from :func:`producer_config`).
        transactional_id: deterministic per (pipeline, stage, partition); None for at-least-once.
        timeout_s: timeout of each transactional call.

    Every method raises :class:`~kstream.errors.TransactionError` when the broker fences, aborts
    or times out the transaction. ``emit`` raises :class:`~kstream.errors.RecordError` (stage
    ``produce``) for a record larger than ``message.max.bytes`` (librdkafka refuses it before
    it joins the transaction), so the error policy of the operator or sink applies.
    """

    def __init__(
        self, conf: Mapping[str, Any], transactional_id: str | None, timeout_s: float = 30.0
    ) -> None:
        conf = dict(conf)
        conf["partitioner"] = "murmur2_random"
        if transactional_id is not None:
            conf["transactional.id"] = transactional_id
            conf.setdefault("transaction.timeout.ms", 60_000)
        else:
            conf["enable.idempotence"] = True
        self.transactional = transactional_id is not None
        self.timeout_s = timeout_s
        #: set when a call hung past its deadline: the producer is never used again
        self.abandoned = False
        self.max_bytes = int(conf.get("message.max.bytes", 1_000_000))
        self._producer = new_producer(conf)
        self.emit = self._make_emit()

    def _make_emit(self) -> Any:
        produce, poll = self._producer.produce, self._producer.poll
        transactional = self.transactional
        ceiling = [time.time_ns() // 1_000_000 + MAX_FUTURE_TS_MS]

        def emit(
            topic: str,
            key: bytes | None,
            value: bytes | None,
            ts: int,
            headers: list[tuple[str, str | bytes | None]] | None,
            partition: int | None,
        ) -> None:
            if not 0 < ts < ceiling[0]:
                ceiling[0] = time.time_ns() // 1_000_000 + MAX_FUTURE_TS_MS
                if not 0 < ts < ceiling[0]:
                    # not a valid Kafka timestamp (0 would mean "now" to the client): the
                    # record gets the produce time and its exact time travels in a header
                    headers = [*(headers or ()), (H_TIME, str(ts).encode())]
                    ts = 0
            while True:
                try:
                    if partition is None:
                        produce(topic, value, key, timestamp=ts, headers=headers)
                    else:
                        produce(topic, value, key, partition, timestamp=ts, headers=headers)
                    return
                except BufferError:
                    poll(0.05)
                except KafkaException as exc:
                    if is_too_large(exc):
                        raise self._too_large_error(topic, key, value) from exc
                    if transactional:
                        raise transaction_error(exc, f"produce to {topic}") from exc
                    raise translate(exc, f"produce to {topic}") from exc

        return emit

    def _too_large_error(self, topic: str, key: bytes | None, value: bytes | None) -> RecordError:
        size = len(key or b"") + len(value or b"")
        return RecordError(
            "produce",
            f"a record of {size} bytes for {topic} is larger than the producer's "
            f"message.max.bytes ({self.max_bytes})",
        )

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` bounded by :data:`CALL_GRACE_S` past the call's own timeout: a call
        that does not return by then abandons this producer (every later call fails at once)
        and raises, so the caller rewinds with a new producer, which fences this one."""
        if self.abandoned:
            raise TransactionError(f"{what}: the producer was abandoned after a hung call")
        try:
            return call_with_deadline(fn, *args, deadline_s=self.timeout_s + CALL_GRACE_S)
        except DeadlineExceeded as exc:
            self.abandoned = True
            raise TransactionError(
                f"{what} did not return within {self.timeout_s + CALL_GRACE_S:g} s "
                "(the client hung); its producer is abandoned"
            ) from exc
        except KafkaException as exc:
            raise transaction_error(exc, what) from exc

    def init(self) -> None:
        """``init_transactions``: fences any previous incarnation and aborts its open txn."""
        if self.transactional:
            self._call("init_transactions", self._producer.init_transactions, self.timeout_s)

    def begin(self) -> None:
        """Begin a transaction (no-op without transactions)."""
        if self.transactional:
            self._call("begin_transaction", self._producer.begin_transaction)

    def send_offsets(self, positions: list[tuple[str, int, int]], consumer: Consumer) -> None:
        """Add input positions ``(topic, partition, next offset)`` to the transaction."""
        tps = [TopicPartition(t, p, o) for t, p, o in positions]
        meta = consumer.consumer_group_metadata()
        self._call(
            "send_offsets_to_transaction",
            self._producer.send_offsets_to_transaction,
            tps,
            meta,
            self.timeout_s,
        )

    def commit(self) -> None:
        """Deliver everything produced, then commit the transaction (without transactions:
        flush and check deliveries). The explicit flush, which ``commit_transaction`` would do
        anyway, puts the fault point ``commit_flushed`` (``KSTREAM_FAULT``, tests) where the
        open transaction's records are on the broker."""
        self.flush()
        if self.transactional:
            faults.point("commit_flushed")
            self._call("commit_transaction", self._producer.commit_transaction, self.timeout_s)

    def abort(self) -> None:
        """Abort the open transaction; errors are ignored (the producer is being replaced)."""
        if self.transactional and not self.abandoned:
            with contextlib.suppress(KStreamError):
                self._call("abort_transaction", self._producer.abort_transaction, self.timeout_s)

    def flush(self) -> None:
        """Deliver everything produced so far.

        Raises:
            TransactionError: records still undelivered after ``timeout_s``, or a hung flush.
        """
        remaining = self._call("flush", self._producer.flush, self.timeout_s)
        if remaining:
            raise TransactionError(f"{remaining} records not delivered within {self.timeout_s} s")

    def poll(self) -> None:
        """Serve delivery callbacks.

        Raises:
            TaskMigratedError: librdkafka raised a fatal fencing error (a newer owner's
                ``init_transactions`` bumped the epoch while this producer had records in
                flight); TransactionError for any other fatal error.
        """
        try:
            self._producer.poll(0)
        except KafkaException as exc:
            raise transaction_error(exc, "poll") from exc

    def flush_quietly(self, timeout_s: float = 5.0) -> None:
        """Best-effort flush before the producer is dropped (errors ignored, at most
        ``timeout_s`` + :data:`CALL_GRACE_S` seconds)."""
        if self.abandoned:
            return
        with contextlib.suppress(KafkaException, DeadlineExceeded):
            call_with_deadline(self._producer.flush, timeout_s, deadline_s=timeout_s + CALL_GRACE_S)


def produce_json(bootstrap: str, settings: Mapping[str, Any], topic: str, value: Any) -> None:
    """Produce one JSON record and wait for its delivery (control messages)."""
    import orjson

    producer = new_producer(producer_config(bootstrap, settings))
    try:
        producer.produce(topic, orjson.dumps(value))
        if producer.flush(10):
            raise BrokerError(f"control message to {topic} not delivered")
    except KafkaException as exc:
        raise translate(exc, f"produce to {topic}") from exc


def transaction_error(exc: KafkaException, what: str) -> TransactionError:
    """The error a task producer's failed call ``what`` raises: :class:`TaskMigratedError`
    when ``exc`` says a newer owner fenced the producer, else :class:`TransactionError`; the
    message is :func:`~kstream.io.clients.translate`'s (``"<what>: <librdkafka's text>"``)."""
    error_class = TaskMigratedError if is_fenced(exc) else TransactionError
    return error_class(str(translate(exc, what)))


class KeyedPublisher:
    """A plain (not transactional) producer for small keyed records sent now and then (the
    status topic): :meth:`publish` never blocks; :meth:`close` waits up to ``timeout_s`` for
    what is in flight.

    Raises:
        BrokerError: the client cannot be created (an invalid configuration).
    """

    def __init__(self, bootstrap: str, settings: Mapping[str, Any], topic: str) -> None:
        self.topic = topic
        self._producer = new_producer(producer_config(bootstrap, settings))

    def publish(self, key: bytes, value: bytes | None) -> None:
        """Queue one record (``value`` None: a tombstone); a full queue or an error is logged
        and the record dropped (the next one replaces it)."""
        try:
            self._producer.produce(self.topic, value, key)
            self._producer.poll(0)
        except (KafkaException, BufferError) as exc:
            log.warning("status record to %s dropped: %s", self.topic, exc)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (at most ``timeout_s`` seconds)."""
        self._producer.flush(timeout_s)
