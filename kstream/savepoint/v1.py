"""Reading savepoint format version 1 (written before 2026-12) into the version-2 model.

Version 1 held one source and numbered stages by position: ``stages[i].index``, task and
entry records with an ``int`` stage, watermarks keyed ``"<index>:<partition>"``, one
``op-<id>.avro`` file per window, no timers. Its stage ids are derived as the runtime names
stages: the source's topic (the default source id) for stage 0, the id of the ``key_by`` keying
the stage for the others. Restore matches a saved stage to the pipeline's by id, then by its
input topics (:func:`kstream.savepoint.compat.match_stages`), so a v1 pipeline whose source had
another id still restores.
"""

from __future__ import annotations

from typing import Any

from kstream.savepoint.format import (
    FileInfo,
    Manifest,
    NodeInfo,
    SourceInfo,
    StageInfo,
    header_fields,
)


def stage_ids(data: dict[str, Any]) -> dict[int, str]:
    """Stage index -> derived stage id of a version-1 manifest ``data``."""
    out: dict[int, str] = {}
    for stage in data["stages"]:
        index = int(stage["index"])
        keyed_by = stage.get("keyed_by")
        out[index] = str(keyed_by["id"]) if keyed_by else str(data["source"]["topic"])
    return out


def manifest_from_v1(data: dict[str, Any]) -> Manifest:
    """The version-1 manifest ``data`` in the version-2 model (``format_version`` stays 1).

    Raises:
        KeyError, TypeError, ValueError: a field is missing or of the wrong type.
    """
    ids = stage_ids(data)
    source = data["source"]
    topic = str(source["topic"])
    return Manifest(
        **header_fields(data),
        nodes={
            str(k): NodeInfo(
                str(k),
                ids[int(v["stage"])],
                dict(v["definition"]),
                {"": FileInfo(str(v["file"]), int(v["entries"]), int(v["bytes"]), v["sha256"])},
            )
            for k, v in dict(data["operators"]).items()
        },
        tasks=FileInfo(**data["tasks"]),
        sources={
            topic: SourceInfo(
                topic,
                topic,
                int(source["partitions"]),
                {int(p): int(o) for p, o in dict(source["offsets"]).items()},
            )
        },
        watermarks={_task_id(ids, str(k)): int(v) for k, v in dict(data["watermarks"]).items()},
        stages=tuple(
            StageInfo(
                ids[int(s["index"])],
                int(s["index"]),
                (str(s["input_topic"]),),
                int(s["partitions"]),
                int(s["tasks"]),
                (dict(s["keyed_by"]),) if s.get("keyed_by") else (),
            )
            for s in data["stages"]
        ),
    )


def _task_id(ids: dict[int, str], old: str) -> str:
    index, _, partition = old.partition(":")
    return f"{ids[int(index)]}:{partition}"
