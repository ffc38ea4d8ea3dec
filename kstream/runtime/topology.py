"""Topic layout of a job: partition counts of every topic it reads or writes, and creation of
the internal and output topics it needs (with explicit retention, as Tansu requires).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kstream.errors import BrokerError
from kstream.graph.plan import Plan, Stage, changelog_topic, task_changelog_topic
from kstream.io.kafka import Admin, TopicConfig


@dataclass
class TopicLayout:
    """Partition count per topic, plus what :func:`ensure_topics` created."""

    partitions: dict[str, int] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    plan: Plan | None = None

    def upstream_tasks(self, stage: Stage) -> int:
        """Number of tasks of the stage before ``stage`` (0 for the source stage)."""
        if stage.index == 0 or self.plan is None:
            return 0
        return self.partitions[self.plan.stages[stage.index - 1].input_topic]


def wanted_topics(plan: Plan, source_partitions: int) -> list[TopicConfig]:
    """Every topic the job writes, with the partition count it would be created with.

    Repartition topics: the ``key_by``'s ``partitions`` or the source's count. Changelogs:
    compacted, partitioned like their stage's input. Sinks, late-data and dead-letter topics:
    the sink's ``partitions`` or the last stage's input partition count.
    """
    spec = plan.spec
    counts: dict[str, int] = {spec.sources[0].topic: source_partitions}
    out: list[TopicConfig] = []
    for stage in plan.stages:
        inputs = counts[stage.input_topic]
        meta_topic = task_changelog_topic(plan.prefix, stage.id)
        out.append(TopicConfig(meta_topic, inputs, compacted=True))
        for window in stage.windows:
            out.append(TopicConfig(changelog_topic(plan.prefix, window.id), inputs, compacted=True))
            if window.late_topic:
                out.append(TopicConfig(window.late_topic, inputs))
        topic = plan.output_topic(stage)
        if topic is not None and stage.key_by is not None:
            counts[topic] = stage.key_by.partitions or source_partitions
            out.append(TopicConfig(topic, counts[topic]))
    last = counts[plan.stages[-1].input_topic]
    for sink in spec.sinks:
        out.append(TopicConfig(sink.topic, sink.partitions or last))
    out.append(TopicConfig(f"{plan.prefix}.control", 1))
    for dead in spec.dead_letter_topics():
        out.append(TopicConfig(dead, 1))
    return out


def ensure_topics(admin: Admin, plan: Plan) -> TopicLayout:
    """Check the source exists, create what is missing, and return the layout.

    Raises:
        BrokerError: the broker is unreachable or the source topic does not exist.
    """
    source = plan.source.topic
    existing = admin.topics()
    if source not in existing:
        raise BrokerError(
            f"source topic '{source}' does not exist; create it, e.g. "
            f"`kstream produce {source} FILE --partitions N`"
        )
    wanted = wanted_topics(plan, existing[source])
    created = admin.ensure_topics(wanted)
    actual = admin.topics()
    layout = TopicLayout(plan=plan, created=created)
    layout.partitions[source] = existing[source]
    for topic in wanted:
        layout.partitions[topic.name] = actual.get(topic.name, topic.partitions)
    return layout
