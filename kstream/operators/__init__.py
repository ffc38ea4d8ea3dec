"""Operators: pure record processing (no Kafka, RocksDB or CLI imports)."""
