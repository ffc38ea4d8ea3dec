"""Time: event-time extraction, Kafka timestamps, watermarks."""
