"""Checks a run makes about its consumer group before and after it reads: a savepoint restored
into a group that already has progress, and a bounded rerun of a group that has read its
sources to the end.

**Restore target.** A savepoint seeds a group that has no committed offsets (Flink starts a job
from a savepoint into a fresh job). A group with committed offsets has checkpoints newer than
any savepoint, so ``--from-savepoint`` into it is refused unless ``--force`` (then tasks with
committed progress keep their own checkpoint and only the others start from the savepoint).
A restore that was started and then stopped or crashed is continued without ``--force``: a run
that seeds a group writes a ``restore`` record to the group's control topic
(``{"type": "restore", "savepoint": REF, "created_ms"}``), and a later start with the same
savepoint finds it there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson

from kstream.errors import StateError
from kstream.io import kafka
from kstream.runtime.control import control_topic

log = logging.getLogger("kstream.runtime.start_checks")

#: ``(topic, partition) -> next offset``
Offsets = dict[tuple[str, int], int]


def savepoint_ref(manifest: Any) -> str:
    """A savepoint's identity, independent of its path: ``<group>@<created_ms>/<fingerprint>``
    (``manifest``: a :class:`kstream.savepoint.format.Manifest`)."""
    return f"{manifest.group}@{manifest.created_ms}/{manifest.fingerprint[:16]}"


def committed_source_offsets(consumer: Any, topics: Mapping[str, int]) -> Offsets:
    """The group's committed offsets of the source partitions that have one (``topics``:
    source topic -> partition count).

    Raises:
        BrokerError: the broker did not answer.
    """
    out: Offsets = {}
    for topic, count in topics.items():
        found = kafka.committed_offsets(consumer, topic, list(range(count)), retry_for_s=30.0)
        out.update(((topic, p), off) for p, off in found.items() if off is not None)
    return out


def check_restore_target(
    committed: Offsets,
    restores: list[dict[str, Any]],
    ref: str,
    group: str,
    force: bool,
) -> str:
    """Decide whether savepoint ``ref`` may seed ``group``; returns ``"new"`` (no committed
    offsets: the savepoint seeds every task), ``"continue"`` (the group was last seeded from
    this savepoint: a restarted restore) or ``"forced"``.

    Args:
        committed: the group's committed source offsets (:func:`committed_source_offsets`).
        restores: the ``restore`` records of the group's control topic, oldest first.

    Raises:
        StateError: the group has committed offsets, was not seeded from this savepoint, and
            ``force`` is False (the message says how to restore into a new group).
    """
    if not committed:
        return "new"
    if restores and restores[-1].get("savepoint") == ref:
        return "continue"
    if force:
        return "forced"
    sample = ", ".join(f"{t}:{p} at {off:,}" for (t, p), off in sorted(committed.items())[:3])
    raise StateError(
        f"consumer group {group!r} already has committed offsets ({sample}"
        f"{', ...' if len(committed) > 3 else ''}): its own checkpoints are newer than the "
        f"savepoint, which is applied only to a new group; restore into a new group with "
        f"--group NEW-GROUP, or add --force to apply the savepoint only to the tasks of "
        f"{group!r} without committed progress (the others keep their checkpoints)"
    )


def read_restores(bootstrap: str, settings: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The ``restore`` records of the group's control topic, oldest first.

    Raises:
        BrokerError: the control topic cannot be read to its end.
    """
    topic = control_topic(prefix)
    records = kafka.read_partitions_to_end(bootstrap, settings, [topic], 0)[topic]
    out = []
    for _key, value in records:
        try:
            msg = orjson.loads(value) if value else None
        except orjson.JSONDecodeError:
            continue
        if isinstance(msg, dict) and msg.get("type") == "restore":
            out.append(msg)
    return out


def record_restore(bootstrap: str, settings: Mapping[str, Any], prefix: str, ref: str) -> None:
    """Write the ``restore`` record of savepoint ``ref`` to the group's control topic.

    Raises:
        BrokerError: it could not be produced.
    """
    kafka.produce_json(
        bootstrap,
        settings,
        control_topic(prefix),
        {"type": "restore", "savepoint": ref, "created_ms": int(time.time() * 1000)},
    )


def finished_group_note(group: str, starts: Offsets, ends: Offsets) -> str | None:
    """The note for a bounded run that had nothing to read because ``group`` has read every
    source partition to its end before (``starts``: the committed offset each source partition
    of this process started at; ``ends``: the end offsets of the bounded run). None when some
    partition had records to read, or the sources are empty."""
    mine = {tp: ends[tp] for tp in starts if tp in ends}
    if not mine or not any(mine.values()):
        return None
    if any(starts[tp] < end for tp, end in mine.items()):
        return None
    topics = ", ".join(sorted({t for t, _p in mine}))
    return (
        f"consumer group {group!r} has already read {topics} to the end (its committed "
        f"offsets are the end offsets of all {len(mine)} partitions read here), so this run "
        f"had nothing to read; to process the input again from the start, run with a new "
        f"consumer group: --group {group}-2 (its internal topics and state start empty)"
    )


def check_savepoint_target(consumer: Any, options: Any, plan: Any, layout: Any) -> str:
    """Before a run with ``--from-savepoint`` reads: refuse a group with committed progress
    (:func:`check_restore_target`), and record the restore in the group's control topic when
    the savepoint seeds the group (``options``: the run's
    :class:`~kstream.runtime.lifecycle.RunOptions`; ``layout``: its
    :class:`~kstream.runtime.topology.TopicLayout`). Returns the decision.

    Raises:
        StateError: see :func:`check_restore_target`.
        SavepointError: the savepoint cannot be read.
        BrokerError: the broker did not answer.
    """
    from kstream.savepoint import open_savepoint

    settings = dict(plan.spec.kafka)
    ref = savepoint_ref(open_savepoint(options.from_savepoint, verify=False).manifest)
    topics = {s.topic: layout.partitions[s.topic] for s in plan.spec.sources}
    committed = committed_source_offsets(consumer, topics)
    restores = read_restores(options.bootstrap, settings, plan.prefix) if committed else []
    decision = check_restore_target(committed, restores, ref, plan.prefix, options.force)
    if decision == "continue":
        log.info("continuing the restore of savepoint %s into group %s", ref, plan.prefix)
    else:
        if decision == "forced":
            log.warning(
                "--force: group %s has committed offsets; tasks with committed progress keep "
                "their checkpoints, the others start from savepoint %s",
                plan.prefix,
                ref,
            )
        record_restore(options.bootstrap, settings, plan.prefix, ref)
    return decision
