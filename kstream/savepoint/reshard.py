"""Seeding a new run's tasks from a savepoint (``kstream run --from-savepoint DIR``).

Rules (Flink savepoint semantics, adapted to Kafka partitions):

- stateful operators match by ``id``; state of an operator the pipeline no longer has is refused
  unless ``allow_non_restored``; an operator whose state layout changed (window type, sizes,
  aggregations) is refused;
- the run's group must have no committed offsets (restore into a new group, ``--group``); every
  process of that group is started with the same ``--from-savepoint``;
- source tasks resume at the savepoint's offsets; partitions added to the source topic since
  start at the beginning; stage-0 state stays with its partition;
- tasks reading a repartition topic get the state of every key that hashes to them (Kafka's
  murmur2 over the JSON key, as the repartition producer does), so a job rescales when the
  repartition partition count differs. That needs a savepoint taken with ``--stop`` (drained
  repartition topics); a savepoint taken without it restores only into the same layout.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from kstream.checkpoint.meta import initial_meta
from kstream.errors import StateError
from kstream.graph.plan import Plan, store_name
from kstream.io.partitioner import partition_for
from kstream.time.watermarks import MIN_WATERMARK

Stores = dict[str, list[tuple[bytes, bytes]]]


class SavepointSeed:
    """The state and positions a savepoint gives each task of a new run.

    Args:
        directory: the savepoint.
        plan: the new run's job graph.
        partitions: partition count of every topic of the new run.
        allow_non_restored: drop state of operators the pipeline no longer has.

    Raises:
        SavepointError: unreadable, incomplete or corrupt savepoint, or one that does not fit
            the pipeline (operators matched by id; see ``kstream.savepoint.check_restore``).
        StateError: the partition layout cannot be restored (the message says why and how).
    """

    def __init__(
        self, directory: Path, plan: Plan, partitions: dict[str, int], allow_non_restored: bool
    ) -> None:
        from kstream.savepoint import check_restore, open_savepoint

        self.plan, self.partitions = plan, partitions
        savepoint = open_savepoint(Path(directory))
        self.notes = check_restore(
            savepoint.manifest,
            plan.spec,
            group=plan.prefix,
            allow_non_restored_state=allow_non_restored,
        )
        self.metas: dict[tuple[int, int], dict[str, Any]] = {
            (t.stage, t.partition): dict(t.meta) for t in savepoint.tasks()
        }
        self.drained = bool(self.metas) and all(m.get("stopped_by") for m in self.metas.values())
        self.old_counts: dict[int, int] = defaultdict(int)
        for stage, _p in self.metas:
            self.old_counts[stage] += 1
        new = {w.id: stage.index for stage in plan.stages for w in stage.windows}
        owners = {op_id: new[op_id] for op_id in savepoint.manifest.operators if op_id in new}
        self._check_layout()
        self.stores: dict[tuple[int, int], Stores] = defaultdict(lambda: defaultdict(list))
        for op_id, stage in owners.items():
            for entry in savepoint.entries(op_id):
                target = self._target(stage, entry.stage, entry.partition, entry.key)
                self.stores[(stage, target)][store_name(op_id)].append((entry.key, entry.value))

    def _check_layout(self) -> None:
        for stage in self.plan.stages:
            count = self.partitions.get(stage.input_topic, 0)
            old = self.old_counts.get(stage.index, 0)
            if stage.index == 0 and count < old:
                raise StateError(
                    f"source topic '{stage.input_topic}' has {count} partitions, "
                    f"fewer than the savepoint's {old}"
                )
            if stage.index > 0 and old and count != old and not self.drained:
                raise StateError(
                    f"stage {stage.index} has {count} partitions, the savepoint {old}: rescaling "
                    "needs a savepoint taken with `kstream savepoint create --stop`"
                )

    def _target(self, stage: int, old_stage: int, old_partition: int, key: bytes) -> int:
        count = self.partitions.get(self.plan.stages[stage].input_topic, 1)
        if stage == 0 and old_stage == 0:
            return old_partition
        return partition_for(bytes(key[16:]), count)

    def seed(self, stage: int, partition: int) -> tuple[dict[str, Any] | None, Stores]:
        """Meta and store entries for task ``stage:partition`` (meta None: start fresh)."""
        stores = {k: list(v) for k, v in self.stores.get((stage, partition), {}).items()}
        old = self.metas.get((stage, partition))
        same = self.old_counts.get(stage, 0) == self.partitions.get(
            self.plan.stages[stage].input_topic, 0
        )
        if stage == 0 or (old is not None and same and not self.drained):
            # a stop recorded in the savepoint is undone by the runner (Task.resume_after_stop)
            return (dict(old) if old else None), stores
        watermarks = [m["watermark"] for (s, _p), m in self.metas.items() if s == stage]
        return initial_meta(watermark=max(watermarks, default=MIN_WATERMARK)), stores
