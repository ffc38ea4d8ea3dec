"""The base pieces of the pipeline spec (:mod:`kstream.pipeline.spec`): the literal types,
the pydantic configuration every spec class shares, and :class:`PortRef` (an edge's end)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

TimeKind = Literal["event", "processing", "ingestion"]
TimeUnit = Literal["ms", "s", "iso", "sql"]
ErrorPolicy = Literal["fail", "skip", "dead_letter"]
Format = Literal["json", "string", "bytes", "avro"]
WindowType = Literal["tumbling", "sliding", "cumulate", "session", "count", "global"]
#: when an element is late for windows that overlap (sliding, cumulate): docs/time-and-windows.md
LateRule = Literal["datastream", "sql"]
EmitMode = Literal["final", "update", "changelog"]
Accumulation = Literal["accumulating", "discarding"]
Guarantee = Literal["exactly_once", "at_least_once"]
WatermarkStrategy = Literal["bounded", "monotonous", "sql"]
#: what a source's ``metadata`` field is set from: the Kafka record's topic, partition, offset,
#: timestamp (epoch ms) or key (decoded by ``key_format``)
RecordMetadata = Literal[
    "topic", "partition", "offset", "timestamp", "timestamp-type", "leader-epoch", "key"
]
#: what a sink with ``key_fields`` writes as the value: every field, or all but the key fields
ValueFields = Literal["all", "except_key"]

#: The pydantic configuration of every spec class: unknown fields are errors; validators are
#: built on first construction (not at import: commands that load no pipeline do not pay).
SPEC_CONFIG = ConfigDict(extra="forbid", defer_build=True)


@dataclass(frozen=True, config=SPEC_CONFIG)
class PortRef:
    """One end of an edge of the graph: output ``port`` of node ``node`` (``main`` by default;
    ``late``, ``errors`` or a branch name otherwise). Written ``node`` or ``node.port``."""

    node: str
    port: str = "main"

    def __str__(self) -> str:
        return self.node if self.port == "main" else f"{self.node}.{self.port}"
