"""kstream.io.kafka.read_partitions_to_end, the changelog read of a restore, on the session's
real broker: one partition of several topics read to its end with one consumer, committed
records only (an open and an aborted transaction are not read), a missing topic as empty."""

from __future__ import annotations

from clikit import unique
from confluent_kafka import Producer

from kstream.io.kafka import Admin, TopicConfig, read_partitions_to_end


def test_reads_each_topic_partition_to_its_end_committed_only(broker: str) -> None:
    window, timers, empty = unique("cl-w"), unique("cl-t"), unique("cl-e")
    Admin(broker).ensure_topics(
        [TopicConfig(t, 2, compacted=True) for t in (window, timers, empty)]
    )
    plain = Producer({"bootstrap.servers": broker, "enable.idempotence": True})
    for i in range(2_500):
        plain.produce(window, b"v%d" % i, b"k%d" % (i % 700), partition=1)
    plain.produce(window, b"other", b"p0", partition=0)
    plain.produce(timers, b"\x01", b"t1", partition=1)
    plain.produce(timers, None, b"t1", partition=1)  # a tombstone is read as (key, None)
    assert plain.flush(30) == 0
    txn = Producer({"bootstrap.servers": broker, "transactional.id": unique("cl-txn")})
    txn.init_transactions(30)
    txn.begin_transaction()
    txn.produce(window, b"aborted", b"a", partition=1)
    txn.flush(30)
    txn.abort_transaction(30)
    missing = unique("cl-missing")

    got = read_partitions_to_end(broker, {}, [window, timers, empty, missing], 1)

    assert got[window] == [(b"k%d" % (i % 700), b"v%d" % i) for i in range(2_500)]
    assert got[timers] == [(b"t1", b"\x01"), (b"t1", None)]
    assert got[empty] == [] and got[missing] == []
