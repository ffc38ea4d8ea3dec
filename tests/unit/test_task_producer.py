"""kstream.io.kafka.TaskProducer's error boundary, without a broker: fencing errors become
TaskMigratedError, other failures TransactionError, and a hung call abandons the producer."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from kstream.errors import TaskMigratedError, TransactionError
from kstream.io import kafka, task_producer


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> kafka.TaskProducer:
    monkeypatch.setattr(task_producer, "CALL_GRACE_S", 0.2)
    conf = kafka.producer_config("127.0.0.1:9", {"log_level": 0})  # nothing listens there
    return kafka.TaskProducer(conf, "kstream.test.s0.p0", timeout_s=0.1)


def raising(code: int) -> object:
    def call(*_args: object) -> None:
        raise KafkaException(KafkaError(code))

    return call


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError._FENCED,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
    ],
)
def test_fencing_means_the_task_migrated(producer: kafka.TaskProducer, code: int) -> None:
    with pytest.raises(TaskMigratedError):
        producer._call("send_offsets_to_transaction", raising(code))


def test_other_failures_rewind(producer: kafka.TaskProducer) -> None:
    with pytest.raises(TransactionError) as info:
        producer._call("commit_transaction", raising(KafkaError._TIMED_OUT))
    assert not isinstance(info.value, TaskMigratedError)


def test_a_hung_call_abandons_the_producer(producer: kafka.TaskProducer) -> None:
    release = threading.Event()
    with pytest.raises(TransactionError, match=r"did not return within 0\.3 s"):
        producer._call("send_offsets_to_transaction", lambda: release.wait(30))
    assert producer.abandoned
    with pytest.raises(TransactionError, match="abandoned after a hung call"):
        producer._call("commit_transaction", lambda: None)
    producer.abort()  # no-op, no hang
    producer.flush_quietly()
    release.set()


class FatalOnPoll:
    """A client whose delivery-callback poll raises librdkafka's fatal error, as confluent-kafka
    does once a newer owner fenced the transactional id while records were in flight."""

    def __init__(self, code: int) -> None:
        self.code = code

    def poll(self, _timeout: float) -> int:
        raise KafkaException(KafkaError(self.code, "fenced", fatal=True))


def test_a_fatal_error_served_by_poll_is_translated(producer: kafka.TaskProducer) -> None:
    producer._producer = FatalOnPoll(KafkaError._FENCED)
    with pytest.raises(TaskMigratedError, match="poll"):
        producer.poll()
    producer._producer = FatalOnPoll(KafkaError._TIMED_OUT)
    with pytest.raises(TransactionError) as info:
        producer.poll()
    assert not isinstance(info.value, TaskMigratedError)
