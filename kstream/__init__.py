"""kstream: Kafka-native stream processing with Flink DataStream semantics."""

__version__ = "0.1.0"
