"""Seeding a new run's tasks from a savepoint (``kstream run --from-savepoint DIR``).

Rules (Flink savepoint semantics, adapted to Kafka partitions):

- stateful nodes match by ``id``, stages by id (version-1 savepoints: by input topics, see
  :func:`kstream.savepoint.compat.match_stages`); state of a node the pipeline no longer has is
  refused unless ``allow_non_restored``; a node whose state layout changed (window type,
  sizes, aggregations) is refused;
- the run's group must have no committed offsets (restore into a new group, ``--group``); every
  process of that group is started with the same ``--from-savepoint``;
- tasks reading sources resume at the savepoint's offsets; partitions added to a source topic
  since start at the beginning; their state stays with its partition;
- tasks reading repartition topics get the state of every key that hashes to them (Kafka's
  murmur2 over the JSON key, as the repartition producer does), windows and timers alike, so a
  job rescales when the repartition partition count differs. That needs a savepoint taken with
  ``--stop`` (drained repartition topics); a savepoint taken without it restores only into the
  same layout;
- an entry of a task rather than of a key (routing :data:`~kstream.savepoint.format.
  TASK_ROUTING`: a process function's TTL declarations) goes back to its task when the
  partition count is unchanged and is dropped on a rescale (the operator then rebuilds what
  it described: its TTL index).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kstream.checkpoint.meta import initial_meta
from kstream.errors import StateError
from kstream.graph.plan import Plan, Stage, StoreRef
from kstream.io.partitioner import partition_for
from kstream.savepoint.format import TASK_ROUTING, SavedEntry
from kstream.savepoint.spill import EntrySpill
from kstream.time.watermarks import MIN_WATERMARK

#: column family -> its entries (an iterator: read once)
Stores = dict[str, Iterator[tuple[bytes, bytes]]]


class SavepointSeed:
    """The state and positions a savepoint gives each task of a new run.

    Args:
        directory: the savepoint.
        plan: the new run's job graph.
        partitions: partition count of every topic of the new run.
        allow_non_restored: drop state of nodes the pipeline no longer has.

    Raises:
        SavepointError: unreadable, incomplete or corrupt savepoint, or one that does not fit
            the pipeline (nodes matched by id; see ``kstream.savepoint.check_restore``).
        StateError: the partition layout cannot be restored (the message says why and how).
    """

    def __init__(
        self, directory: Path, plan: Plan, partitions: dict[str, int], allow_non_restored: bool
    ) -> None:
        from kstream.savepoint import check_restore, open_savepoint
        from kstream.savepoint.compat import match_stages

        self.plan, self.partitions = plan, partitions
        savepoint = open_savepoint(Path(directory))
        self.notes = check_restore(
            savepoint.manifest,
            plan.spec,
            group=plan.prefix,
            allow_non_restored_state=allow_non_restored,
        )
        stages = match_stages(savepoint.manifest, plan)
        #: (new stage id, partition) -> saved task metadata
        self.metas: dict[tuple[str, int], dict[str, Any]] = {
            (stages[t.stage].id, t.partition): dict(t.meta)
            for t in savepoint.tasks()
            if t.stage in stages
        }
        self.drained = bool(self.metas) and all(m.get("stopped_by") for m in self.metas.values())
        self.old_counts: dict[str, int] = defaultdict(int)
        for stage_id, _p in self.metas:
            self.old_counts[stage_id] += 1
        self._check_layout()
        #: the saved entries by new task, on disk (a savepoint larger than memory restores)
        self.spill = EntrySpill()
        for stage in plan.stages:
            for ref in stage.stores:
                if ref.node in savepoint.manifest.nodes:
                    self._take(stage, ref, savepoint.entries(ref.node, ref.store))
        self.spill.finish()

    def _take(self, stage: Stage, ref: StoreRef, entries: Iterable[SavedEntry]) -> None:
        """Route the saved entries of one store to the new tasks of ``stage``."""
        count = self.partitions.get(stage.input_topic, 1)
        same = self.old_counts.get(stage.id, 0) == count
        add, cf = self.spill.add, ref.column_family
        for entry in entries:
            if stage.is_source or (entry.routing == TASK_ROUTING and same):
                target = entry.partition
            elif entry.routing != TASK_ROUTING:
                target = partition_for(entry.routing, count)
            else:
                continue
            add((stage.id, target, cf), entry.key, entry.value)

    def _check_layout(self) -> None:
        for stage in self.plan.stages:
            count = self.partitions.get(stage.input_topic, 0)
            old = self.old_counts.get(stage.id, 0)
            if stage.is_source and count < old:
                raise StateError(
                    f"source topic '{stage.input_topic}' has {count} partitions, "
                    f"fewer than the savepoint's {old}"
                )
            if not stage.is_source and old and count != old and not self.drained:
                raise StateError(
                    f"stage {stage.id} has {count} partitions, the savepoint {old}: rescaling "
                    "needs a savepoint taken with `kstream savepoint create --stop`"
                )

    def seed(self, stage_id: str, partition: int) -> tuple[dict[str, Any] | None, Stores]:
        """Meta and store entries for task ``stage_id:partition`` (meta None: start fresh);
        the entries of each column family with any, read from disk as they are iterated."""
        stores = {
            cf: self.spill.read((stage_id, partition, cf))
            for cf in self.spill.column_families(stage_id, partition)
        }
        stage = self.plan.stage_by_id(stage_id)
        old = self.metas.get((stage_id, partition))
        same = self.old_counts.get(stage_id, 0) == self.partitions.get(stage.input_topic, 0)
        if stage.is_source or (old is not None and same and not self.drained):
            # a stop recorded in the savepoint is undone by the runner (Task.resume_after_stop)
            return (dict(old) if old else None), stores
        watermarks = [m["watermark"] for (s, _p), m in self.metas.items() if s == stage_id]
        return initial_meta(watermark=max(watermarks, default=MIN_WATERMARK)), stores
