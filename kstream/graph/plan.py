"""The job graph: a pipeline compiled into stages, and the names derived from operator ids.

A ``key_by`` ends a stage; its records go to the repartition topic
``<pipeline>.<key_by id>.repartition`` and the next stage reads that topic. Every name derived
from a stable operator id (store, changelog topic, transactional id) comes from one function here.
"""

from __future__ import annotations

from dataclasses import dataclass

from kstream.pipeline.spec import (
    KeyBySpec,
    OperatorSpec,
    PipelineSpec,
    SinkSpec,
    SourceSpec,
    WindowSpec,
)


def repartition_topic(pipeline: str, operator_id: str) -> str:
    """``<pipeline>.<operator-id>.repartition``."""
    return f"{pipeline}.{operator_id}.repartition"


def changelog_topic(pipeline: str, operator_id: str) -> str:
    """``<pipeline>.<operator-id>.changelog`` (compacted, partitioned like the task input)."""
    return f"{pipeline}.{operator_id}.changelog"


def task_changelog_topic(pipeline: str, stage_id: str) -> str:
    """``<pipeline>.<stage-id>.task.changelog``: the checkpoint metadata of a stage's tasks
    (position, watermarks, duplicate detection), for every stage, with or without state."""
    return f"{pipeline}.{stage_id}.task.changelog"


def store_name(operator_id: str) -> str:
    """The RocksDB column family holding an operator's state."""
    return f"op.{operator_id}"


def transactional_id(pipeline: str, stage: int, partition: int) -> str:
    """Deterministic per (pipeline, stage, partition): a restarted or moved task fences its
    previous incarnation."""
    return f"kstream.{pipeline}.s{stage}.p{partition}"


@dataclass(frozen=True)
class Stage:
    """One stage: the operators between two repartitions.

    Attributes:
        index: 0 for the stage reading the source.
        input_topic: the source topic (stage 0) or the previous stage's repartition topic.
        operators: the stage's operators, without the ``key_by`` that ends it.
        key_by: the ``key_by`` ending the stage (None for the last stage).
        sinks: the pipeline's sinks (last stage only).
    """

    index: int
    input_topic: str
    operators: tuple[OperatorSpec, ...]
    key_by: KeyBySpec | None
    sinks: tuple[SinkSpec, ...]
    #: the id of the node the stage starts with: the source (stage 0) or the ``key_by`` whose
    #: repartition topic it reads; names the stage's task changelog
    id: str = ""

    @property
    def is_source(self) -> bool:
        """True for the stage that reads the source topic."""
        return self.index == 0

    @property
    def windows(self) -> list[WindowSpec]:
        """The stage's stateful operators."""
        return [op for op in self.operators if isinstance(op, WindowSpec)]


@dataclass(frozen=True)
class Plan:
    """The job graph of a pipeline.

    Attributes:
        prefix: names internal topics, transactional ids and state directories; the consumer
            group id (the pipeline name unless a group is given), so a copy of a job run in
            another group (``--group``) never touches the original's internal topics.
    """

    spec: PipelineSpec
    stages: tuple[Stage, ...]
    prefix: str = ""

    @property
    def source(self) -> SourceSpec:
        """The pipeline's source."""
        return self.spec.sources[0]

    def output_topic(self, stage: Stage) -> str | None:
        """The repartition topic a stage writes, if it ends with a ``key_by``."""
        if stage.key_by is None:
            return None
        return repartition_topic(self.prefix, stage.key_by.id)

    def late_topics(self) -> list[str]:
        """Every late-data topic configured on a window."""
        return [w.late_topic for s in self.stages for w in s.windows if w.late_topic]

    def input_topics(self) -> list[str]:
        """Every topic the job consumes (source and repartition topics)."""
        return [stage.input_topic for stage in self.stages]

    def stage_of_topic(self, topic: str) -> Stage:
        """The stage that reads ``topic``."""
        for stage in self.stages:
            if stage.input_topic == topic:
                return stage
        raise KeyError(topic)


def build_plan(spec: PipelineSpec, group: str | None = None) -> Plan:
    """Split the operator chain at every ``key_by`` into stages; internal names use ``group``
    (default: the pipeline's group id, i.e. its name)."""
    prefix = group or spec.group_id
    stages: list[Stage] = []
    current: list[OperatorSpec] = []
    topic = spec.sources[0].topic
    stage_id = spec.sources[0].name
    for op in spec.operators:
        if isinstance(op, KeyBySpec):
            stages.append(Stage(len(stages), topic, tuple(current), op, (), stage_id))
            topic = repartition_topic(prefix, op.id)
            stage_id = op.id
            current = []
        else:
            current.append(op)
    stages.append(Stage(len(stages), topic, tuple(current), None, spec.sinks, stage_id))
    return Plan(spec, tuple(stages), prefix)
