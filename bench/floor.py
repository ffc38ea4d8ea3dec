"""The floor: the least work a Kafka-to-Kafka job in Python can do per record.

A bare confluent-kafka loop, run as its own process: join a consumer group, consume the input in
batches, decode each JSON value, encode it again and produce one output record per input record,
stop once every partition has been read to its end offset, flush, commit, exit. Same consumer
and producer settings as kstream's defaults (``kstream.io.kafka``), so the difference between the
floor and a kstream job is the engine.

Usage: python bench/floor.py BOOTSTRAP INPUT OUTPUT GROUP END_OFFSETS_JSON RESULT_FILE
"""

from __future__ import annotations

import json
import sys
import time

import orjson
from confluent_kafka import Consumer, KafkaError, Producer


def main(argv: list[str]) -> int:
    bootstrap, source, sink, group, ends_json, result_file = argv
    ends = {int(p): int(o) for p, o in json.loads(ends_json).items()}
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.queue.backoff.ms": 10,
            "max.poll.interval.ms": 10_000,
            "session.timeout.ms": 6_000,
            "heartbeat.interval.ms": 1_000,
            "partition.assignment.strategy": "range",
            "log_level": 3,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "log_level": 3,
        }
    )
    consumer.subscribe([source])
    pending = {p for p, end in ends.items() if end > 0}
    loads, dumps, produce, poll = orjson.loads, orjson.dumps, producer.produce, producer.poll
    first_record = None
    count = 0
    while pending:
        msgs = consumer.consume(10_000, 0.05)
        for m in msgs:
            if m.error() is not None:
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"floor: consumer error {m.error().str()}", file=sys.stderr)
                continue
            value = loads(m.value())
            while True:
                try:
                    produce(sink, dumps(value), m.key(), timestamp=m.timestamp()[1])
                    break
                except BufferError:
                    poll(0.05)
            if m.offset() + 1 >= ends[m.partition()]:
                pending.discard(m.partition())
        if msgs:
            if first_record is None:
                first_record = time.time()
            count += len(msgs)
            poll(0)
    while producer.flush(1.0):
        pass
    consumer.commit(asynchronous=False)
    consumer.close()
    with open(result_file, "w") as handle:
        json.dump({"first_record": first_record, "consumed": count}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
