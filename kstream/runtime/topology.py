"""Topic layout of a job: partition counts of every topic it reads or writes, and creation of
the internal and output topics it needs (with explicit retention, as Tansu requires).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kstream.errors import BrokerError, ConfigError, ConfigIssue
from kstream.graph.plan import Plan, Stage, task_changelog_topic
from kstream.io.kafka import Admin, TopicConfig
from kstream.runtime.status_record import status_topic


@dataclass
class TopicLayout:
    """Partition count per topic, plus what :func:`ensure_topics` created."""

    partitions: dict[str, int] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    plan: Plan | None = None

    def upstream_tasks(self, stage: Stage) -> int:
        """Number of tasks writing the repartition topic ``stage`` reads (0 for a stage reading
        a source): the partition count of the upstream stage's input."""
        if stage.is_source or self.plan is None:
            return 0
        upstream = self.plan.upstream_stages(stage)
        return sum(self.partitions[s.input_topic] for s in upstream)

    def upstream_tasks_by_topic(self, stage: Stage) -> dict[str, int]:
        """Per repartition topic ``stage`` reads: the number of tasks writing it."""
        if self.plan is None:
            return {}
        return {
            self.plan.output_topic_of(k): self.partitions[s.input_topic]
            for k, s in zip(stage.keyed_by, self.plan.upstream_stages(stage), strict=True)
        }


def wanted_topics(plan: Plan, source_partitions: Mapping[str, int]) -> list[TopicConfig]:
    """Every topic the job writes, with the partition count it would be created with.

    ``source_partitions``: partition count per source topic (1 when missing). Repartition
    topics: the ``key_by``'s ``partitions`` or its stage's input count, except that the
    repartition topics a stage co-partitions with other inputs (a join's) all take the count
    of the stage's source input when it has one, else the largest of them
    (:func:`_co_partition`). Changelogs: compacted,
    partitioned like their stage's input. Sinks and late-data topics: the sink's
    ``partitions`` or their stage's input count; dead-letter topics: 1.
    """
    spec = plan.spec
    counts = {s.topic: source_partitions.get(s.topic, 1) for s in spec.sources}
    out: list[TopicConfig] = []
    auto: set[str] = set()  # repartition topics counted after their writer's input
    for stage in plan.stages:  # topological: a stage's input count is known when it comes
        for topic in _co_partition(stage, counts, auto):
            out = [TopicConfig(t.name, counts[topic]) if t.name == topic else t for t in out]
        inputs = counts[stage.input_topic]
        out.append(TopicConfig(task_changelog_topic(plan.prefix, stage.id), inputs, compacted=True))
        for ref in stage.stores:
            out.append(TopicConfig(ref.changelog(plan.prefix), inputs, compacted=True))
        for window in stage.windows:
            if window.late_topic:
                out.append(TopicConfig(window.late_topic, inputs))
        for topic, key_by in plan.output_topics(stage):
            counts[topic] = key_by.partitions or inputs
            out.append(TopicConfig(topic, counts[topic]))
            if key_by.partitions is None:
                auto.add(topic)
        for sink in stage.sinks:
            out.append(TopicConfig(sink.topic, sink.partitions or inputs))
    out.append(TopicConfig(f"{plan.prefix}.control", 1))
    out.append(TopicConfig(status_topic(plan.prefix), 1, compacted=True))
    for dead in spec.dead_letter_topics():
        out.append(TopicConfig(dead, 1))
    return out


def _co_partition(stage: Stage, counts: dict[str, int], auto: set[str]) -> list[str]:
    """Give the repartition topics ``stage`` reads with other inputs (``auto``: those without
    an explicit ``partitions``) one partition count: a source input's, else the largest.
    Returns the topics whose count changed."""
    if len(stage.inputs) < 2:
        return []
    sources = [counts[i.topic] for i in stage.inputs if i.source is not None]
    target = sources[0] if sources else max(counts[i.topic] for i in stage.inputs)
    changed = [i.topic for i in stage.inputs if i.topic in auto and counts[i.topic] != target]
    for topic in changed:
        counts[topic] = target
    return changed


def ensure_topics(admin: Admin, plan: Plan) -> TopicLayout:
    """Check the sources exist, create what is missing, and return the layout.

    Raises:
        BrokerError: the broker is unreachable or the source topic does not exist.
        ConfigError: a stage's input topics (sources, and repartition topics as they exist)
            have different partition counts.
    """
    existing = admin.topics()
    for source in plan.spec.sources:
        if source.topic not in existing:
            raise BrokerError(
                f"source topic '{source.topic}' does not exist; create it, e.g. "
                f"`kstream produce {source.topic} FILE --partitions N`"
            )
    wanted = wanted_topics(plan, existing)
    created = admin.ensure_topics(wanted)
    actual = admin.topics()
    layout = TopicLayout(plan=plan, created=created)
    for source in plan.spec.sources:
        layout.partitions[source.topic] = existing[source.topic]
    for topic in wanted:
        layout.partitions[topic.name] = actual.get(topic.name, topic.partitions)
    for stage in plan.stages:  # repartition topics too: one may exist with another count
        counts = {t: layout.partitions.get(t, 0) for t in stage.input_topics}
        if len(set(counts.values())) > 1:
            shown = ", ".join(f"{t}: {n}" for t, n in counts.items())
            raise ConfigError(
                [
                    ConfigIssue(
                        plan.spec.path,
                        0,
                        f"stage {stage.id}",
                        f"its input topics have different partition counts ({shown})",
                        "a task reads the same partition of each (keyed state after a union "
                        "or a key_by needs it): give them the same count (e.g. key_by "
                        "partitions: N before an input, or recreate a source topic)",
                    )
                ]
            )
    return layout
