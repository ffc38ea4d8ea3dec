"""Topic administration: create topics with their settings, list topics and partition counts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    KafkaError,
    KafkaException,
)
from confluent_kafka.admin import AdminClient, NewTopic

from kstream.errors import (
    BrokerError,
)
from kstream.io.clients import CONSUMER_ONLY, PRODUCER_ONLY, common_config
from kstream.pipeline.view import remember_secrets


@dataclass(frozen=True)
class TopicConfig:
    """A topic to create: partition count and explicit retention (Tansu needs them explicit)."""

    name: str
    partitions: int
    compacted: bool = False


class Admin:
    """Topic administration over confluent-kafka's ``AdminClient``.

    All methods raise :class:`BrokerError` when the broker is unreachable within ``timeout_s``.
    """

    def __init__(
        self, bootstrap: str, settings: Mapping[str, Any] | None = None, timeout_s: float = 10.0
    ) -> None:
        remember_secrets(settings)
        conf = common_config(settings or {}, CONSUMER_ONLY | PRODUCER_ONLY)
        conf["bootstrap.servers"] = bootstrap
        conf.setdefault("log_level", 0)
        conf.setdefault("allow.auto.create.topics", False)
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._client = AdminClient(conf)

    def partitions(self, topic: str) -> int | None:
        """Partition count of ``topic``, or ``None`` when it does not exist."""
        meta = self._metadata(topic)
        info = meta.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            return None
        return len(info.partitions)

    def topics(self) -> dict[str, int]:
        """Every topic with its partition count."""
        meta = self._metadata(None)
        return {name: len(t.partitions) for name, t in meta.topics.items() if t.error is None}

    def _metadata(self, topic: str | None) -> Any:
        try:
            return self._client.list_topics(topic=topic, timeout=self.timeout_s)
        except KafkaException as exc:
            raise BrokerError(
                f"cannot reach Kafka at {self.bootstrap} ({exc.args[0].str()}); "
                "is the broker running? start one with `kstream broker`"
            ) from exc

    def ensure_topics(self, wanted: Iterable[TopicConfig]) -> list[str]:
        """Create each missing topic; return the names created. Existing topics are kept as is."""
        existing = self.topics()
        missing = [t for t in wanted if t.name not in existing]
        if not missing:
            return []
        new = [NewTopic(t.name, t.partitions, 1, config=_topic_settings(t)) for t in missing]
        futures = self._client.create_topics(new, operation_timeout=self.timeout_s)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BrokerError(f"cannot create topic {name}: {exc.args[0].str()}") from exc
        self._wait_visible([t.name for t in missing])
        return [t.name for t in missing]

    def _wait_visible(self, names: list[str]) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            existing = self.topics()
            if all(n in existing for n in names):
                return
            time.sleep(0.05)
        raise BrokerError(f"topics not visible after creation: {names}")

    def delete_topics(self, names: list[str]) -> None:
        """Delete topics (missing ones are ignored)."""
        if not names:
            return
        for future in self._client.delete_topics(names, operation_timeout=self.timeout_s).values():
            with contextlib.suppress(KafkaException):
                future.result()


def _topic_settings(topic: TopicConfig) -> dict[str, str]:
    if topic.compacted:
        return {"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
    return {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
