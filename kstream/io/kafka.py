"""The Kafka API of the engine: the only package that imports confluent-kafka is
:mod:`kstream.io`, and the rest of kstream reaches it through this module
(``from kstream.io import kafka``; ``kafka.Admin``, ``kafka.TaskProducer``, ...).

The work is done in :mod:`~kstream.io.clients` (configuration, clients, error translation),
:mod:`~kstream.io.topics` (administration), :mod:`~kstream.io.task_producer` (a task's
transactional producer), :mod:`~kstream.io.consumer` (offsets, seeks, reading to the end),
:mod:`~kstream.io.groups` (consumer-group administration: members, deletion, offset resets) and
:mod:`~kstream.io.registry` (the schema registry).
"""

from __future__ import annotations

from kstream.io.clients import (
    CONSUMER_DEFAULTS,
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    PARTITION_EOF,
    PRODUCER_DEFAULTS,
    KafkaLibraryError,
    consumer_config,
    is_partition_eof,
    message_error,
    message_headers,
    message_timestamp_ms,
    new_consumer,
    new_producer,
    producer_config,
    topic_partition,
    translate,
)
from kstream.io.consumer import (
    OnRecords,
    PartitionsReader,
    TopicReader,
    cached_end_offsets,
    commit_offsets,
    committed_offsets,
    end_offsets,
    group_members,
    pause,
    probe_end_offsets,
    read_partitions_to_end,
    resume,
    seek,
    stream_partitions_to_end,
)
from kstream.io.groups import GroupAdmin, GroupDeletion, GroupMember
from kstream.io.registry import SchemaRegistry, schema_registry
from kstream.io.task_producer import CALL_GRACE_S, KeyedPublisher, TaskProducer, produce_json
from kstream.io.topics import Admin, TopicConfig

__all__ = [
    "CALL_GRACE_S",
    "CONSUMER_DEFAULTS",
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "PARTITION_EOF",
    "PRODUCER_DEFAULTS",
    "Admin",
    "GroupAdmin",
    "GroupDeletion",
    "GroupMember",
    "KafkaLibraryError",
    "KeyedPublisher",
    "OnRecords",
    "PartitionsReader",
    "SchemaRegistry",
    "TaskProducer",
    "TopicConfig",
    "TopicReader",
    "cached_end_offsets",
    "commit_offsets",
    "committed_offsets",
    "consumer_config",
    "end_offsets",
    "group_members",
    "is_partition_eof",
    "message_error",
    "message_headers",
    "message_timestamp_ms",
    "new_consumer",
    "new_producer",
    "pause",
    "probe_end_offsets",
    "produce_json",
    "producer_config",
    "read_partitions_to_end",
    "resume",
    "schema_registry",
    "seek",
    "stream_partitions_to_end",
    "topic_partition",
    "translate",
]
