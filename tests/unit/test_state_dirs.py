"""Task state directories and transactional ids are named by stage id, never by position: a
filter inserted before a key_by renames nothing, and state written by older versions (named
``<stage index>-<partition>``) is moved to its stage-id name on first open."""

from __future__ import annotations

from pathlib import Path

from kstream.graph.plan import Plan, build_plan, transactional_id
from kstream.pipeline.load import load_pipeline_text
from kstream.runtime.restore import open_store
from kstream.state.store import TaskStore, legacy_task_dir, read_meta, task_dir

PIPELINE = """\
pipeline: ids
sources:
  - topic: in
operators:
{extra}  - {{id: by-k, key_by: k}}
  - {{id: w, window: {{type: tumbling, size: 1h, aggregate: {{n: count}}}}}}
sinks:
  - topic: out
"""


def plan(extra: str = "") -> Plan:
    return build_plan(load_pipeline_text(PIPELINE.format(extra=extra), "ids.yaml"))


def test_names_follow_stage_ids_not_positions(tmp_path: Path) -> None:
    before, after = plan(), plan('  - {filter: "k is not None"}\n')
    for p in (before, after):
        stage = p.stages[1]
        assert stage.id == "by-k"
        assert task_dir(tmp_path, p.prefix, stage.id, 3) == tmp_path / "ids" / "by-k.p3"
        assert transactional_id(p.prefix, stage.id, 3) == "kstream.ids.by-k.p3"


def test_state_of_an_older_version_is_moved_to_its_stage_id_name(tmp_path: Path) -> None:
    job = plan()
    stage = job.stages[1]
    legacy = legacy_task_dir(tmp_path, job.prefix, stage.index, 0)
    store = TaskStore(legacy, ["op.w"])
    store.apply({"op.w": [(b"k", b"v")]}, {"position": 41, "checkpoint_id": 2})
    store.close()
    store = open_store(str(tmp_path), job.prefix, stage, 0)
    try:
        assert list(store.items("op.w")) == [(b"k", b"v")]
    finally:
        store.close()
    assert not legacy.exists()
    assert (read_meta(task_dir(tmp_path, job.prefix, "by-k", 0)) or {})["position"] == 41
