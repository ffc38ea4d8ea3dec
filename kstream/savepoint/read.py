"""Reading, listing and disposing savepoints (format: :mod:`kstream.savepoint.format`).

:func:`open_savepoint` accepts only a complete savepoint: a directory that is not a partial one
(``.<name>.partial-<pid>``), holds ``manifest.json`` of a known format version, and whose data
files have the sizes and SHA-256 digests the manifest records.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kstream.errors import SavepointError
from kstream.io.avro import ContainerError, read_container
from kstream.savepoint.format import (
    ENTRY_SCHEMA,
    MANIFEST,
    TASK_SCHEMA,
    FileInfo,
    Manifest,
    NodeInfo,
    SavedEntry,
    TaskSnapshot,
    file_digest,
    is_partial,
    partial_owner,
)


def load_manifest(directory: str | Path) -> Manifest:
    """The manifest of the savepoint in ``directory``, without checking the data files.

    Raises:
        SavepointError: ``directory`` is a partial savepoint, has no ``manifest.json``, or the
            manifest is unreadable, malformed or of an unknown format version.
    """
    path = Path(directory)
    if is_partial(path):
        raise SavepointError(
            f"{path} is an incomplete savepoint (its writer was interrupted); "
            "it cannot be used — remove it with `kstream savepoint dispose`"
        )
    if not path.is_dir():
        raise SavepointError(f"{path} is not a directory")
    try:
        text = (path / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SavepointError(f"{path} is not a savepoint: it has no {MANIFEST}") from None
    except OSError as exc:
        raise SavepointError(f"cannot read {path / MANIFEST}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SavepointError(f"{path / MANIFEST} is not valid JSON: {exc}") from exc
    return Manifest.from_dict(data, str(path / MANIFEST))


def check_files(directory: Path, manifest: Manifest, *, digests: bool = True) -> None:
    """Check that every data file exists with the recorded size (and, with ``digests``, the
    recorded SHA-256).

    Raises:
        SavepointError: a file is missing, unreadable, or differs from the manifest.
    """
    for info in manifest.files():
        path = directory / info.file
        try:
            size = path.stat().st_size
            digest = file_digest(path)[0] if digests and size == info.bytes else info.sha256
        except OSError as exc:
            raise SavepointError(
                f"savepoint {directory}: file {info.file} is missing or unreadable "
                f"({exc.strerror or exc})"
            ) from exc
        if size != info.bytes or digest != info.sha256:
            raise SavepointError(
                f"savepoint {directory}: file {info.file} is corrupt (its "
                f"{'size' if size != info.bytes else 'SHA-256'} differs from the manifest)"
            )


def open_savepoint(directory: str | Path, *, verify: bool = True) -> Savepoint:
    """Open the savepoint in ``directory``.

    Args:
        verify: check every data file's SHA-256 now (reads all of them); without it only the
            sizes are checked.

    Raises:
        SavepointError: not a complete savepoint (see the module docstring).
    """
    path = Path(directory)
    manifest = load_manifest(path)
    check_files(path, manifest, digests=verify)
    return Savepoint(path, manifest)


class Savepoint:
    """An opened savepoint (use :func:`open_savepoint`).

    Attributes:
        directory: where it is.
        manifest: its parsed ``manifest.json``.
    """

    def __init__(self, directory: Path, manifest: Manifest) -> None:
        self.directory = directory
        self.manifest = manifest

        #: stage index -> stage id, for the records of version 1 (stage by position)
        self._stage_ids = {s.index: s.id for s in manifest.stages}

    @property
    def operator_ids(self) -> list[str]:
        """The stateful nodes saved, in declaration order."""
        return list(self.manifest.nodes)

    def tasks(self) -> list[TaskSnapshot]:
        """Every task's checkpoint metadata, in file order (stage order, then partition).

        Raises:
            SavepointError: ``tasks.avro`` is unreadable or does not match the manifest.
        """
        out = []
        for r in self._records(self.manifest.tasks, TASK_SCHEMA):
            inputs = tuple(r["inputs"]) if "inputs" in r else (r["input_topic"],)
            meta = orjson.loads(r["meta"])
            out.append(TaskSnapshot(self._stage(r["stage"]), r["partition"], inputs, meta))
        return out

    def entries(self, operator_id: str, store: str = "") -> Iterator[SavedEntry]:
        """The raw entries of store ``store`` (``""``: the default one, ``timers``, ``ttl``) of
        node ``operator_id`` (lazily, in file order); nothing for a store the savepoint does
        not hold (version 1 holds no timers; savepoints written before the ``ttl`` store, no
        ``ttl``).

        Raises:
            SavepointError: unknown node, or its file is unreadable or does not match the
                manifest.
        """
        info = self._operator(operator_id).stores.get(store)
        if info is None:
            return
        stage = self._stage
        for r in self._records(info, ENTRY_SCHEMA):
            yield SavedEntry(stage(r["stage"]), r["partition"], r["key"], r["value"], r["routing"])

    def _stage(self, stage: str | int) -> str:
        return self._stage_ids[stage] if isinstance(stage, int) else stage

    def windows(
        self, operator_id: str, key: Any = None, *, search_paths: Sequence[str] = (".",)
    ) -> Iterator[dict[str, Any]]:
        """The windows (or keys, for a global aggregation) held by ``operator_id``, decoded
        (a process function: its state, one ``{"key", "state", "kind", "value"}`` per key and
        declared state):
        ``{"key", "window_start", "window_end", <aggregation name>: value, ...}`` (global:
        ``{"key", <aggregation name>: value, ...}``). Times are epoch ms (count windows:
        element positions).

        Args:
            key: only the windows of this record key (None: every key).
            search_paths: directories to import ``python`` aggregates from; an aggregate that
                cannot be imported shows its raw accumulator.

        Raises:
            SavepointError: unknown operator, unreadable file, or an entry that does not fit
                the operator's definition.
        """
        from kstream.savepoint.view import (
            decode_join_state,
            decode_process_state,
            decode_windows,
        )

        info = self._operator(operator_id)
        if info.definition.get("kind") == "process":
            yield from decode_process_state(info.definition, self.entries(operator_id), key)
            return
        if info.definition.get("kind") == "join":
            yield from decode_join_state(info.definition, self.entries(operator_id), key)
            return
        yield from decode_windows(info.definition, self.entries(operator_id), key, search_paths)

    def keys_in_several_tasks(self, operator_id: str) -> list[bytes]:
        """Raw store keys of ``operator_id`` held by more than one task (possible in a stage
        reading sources, which need not be partitioned by the key): such entries collide when
        the state is re-sharded into another partition count.

        Raises:
            SavepointError: as :meth:`entries`.
        """
        owners: dict[bytes, int] = {}
        shared: set[bytes] = set()
        for entry in self.entries(operator_id):
            first = owners.setdefault(entry.key, entry.partition)
            if first != entry.partition:
                shared.add(entry.key)
        return sorted(shared)

    def operator(self, operator_id: str) -> NodeInfo:
        """The manifest's entry of stateful node ``operator_id``.

        Raises:
            SavepointError: the savepoint holds no such node (the message lists those it has).
        """
        return self._operator(operator_id)

    def _operator(self, operator_id: str) -> Any:
        info = self.manifest.operators.get(operator_id)
        if info is None:
            known = ", ".join(self.operator_ids) or "none"
            raise SavepointError(
                f"savepoint {self.directory} has no operator {operator_id!r} (operators: {known})"
            )
        return info

    def _records(self, info: FileInfo, schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
        path = self.directory / info.file
        try:
            writer, records = read_container(path)
            if str(writer.get("name", "")).rsplit(".", 1)[-1] != schema["name"]:
                raise SavepointError(f"{path}: expected {schema['name']} records")
            count = 0
            for record in records:
                count += 1
                yield record
        except ContainerError as exc:
            raise SavepointError(f"savepoint {self.directory}: {exc}") from exc
        if count != info.records:
            raise SavepointError(f"{path}: {count} records, the manifest says {info.records}")


@dataclass(frozen=True)
class SavepointSummary:
    """One line of :func:`list_savepoints` (``bytes``: the data files, manifest excluded)."""

    path: Path
    pipeline: str
    created_ms: int
    bytes: int
    operators: tuple[str, ...]
    fingerprint: str


def list_savepoints(root: str | Path) -> list[SavepointSummary]:
    """The complete savepoints in ``root`` itself, its sub-directories and theirs (one or two
    levels deep), oldest first. Partial directories, directories without a valid manifest and
    savepoints with a missing or truncated file are left out (digests are not checked: use
    :func:`open_savepoint` for that)."""
    base = Path(root)
    out = []
    for path in _candidates(base):
        try:
            manifest = load_manifest(path)
            check_files(path, manifest, digests=False)
        except SavepointError:
            continue
        out.append(
            SavepointSummary(
                path,
                manifest.pipeline,
                manifest.created_ms,
                manifest.total_bytes,
                tuple(manifest.operators),
                manifest.fingerprint,
            )
        )
    return sorted(out, key=lambda s: (s.created_ms, str(s.path)))


def _candidates(base: Path) -> list[Path]:
    found = [base] if (base / MANIFEST).is_file() else []
    for first in _subdirs(base):
        found.append(first)
        found.extend(_subdirs(first))
    return [p for p in found if not is_partial(p) and (p / MANIFEST).is_file()]


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not is_partial(p))
    except OSError:
        return []


def dispose(directory: str | Path) -> int:
    """Delete a savepoint; returns the bytes freed. The manifest goes first, so an interrupted
    dispose leaves a directory no reader accepts. Also removes a partial directory whose
    writer process is gone.

    Raises:
        SavepointError: ``directory`` is not a savepoint (nothing is deleted), contains files
            that are not part of it, or is a partial directory whose writer still runs.
    """
    path = Path(directory)
    if is_partial(path) and path.is_dir():
        return _dispose_partial(path)
    manifest = load_manifest(path)
    names = {MANIFEST, *(info.file for info in manifest.files())}
    extra = sorted(p.name for p in path.iterdir() if p.name not in names)
    if extra:
        raise SavepointError(
            f"{path} holds files that are not part of the savepoint ({', '.join(extra[:5])}); "
            "nothing was deleted"
        )
    freed = 0
    for name in [MANIFEST, *sorted(names - {MANIFEST})]:
        file = path / name
        if file.exists():
            freed += file.stat().st_size
            file.unlink()
    path.rmdir()
    return freed


def _dispose_partial(path: Path) -> int:
    pid = partial_owner(path)
    if pid is not None and pid != os.getpid() and _alive(pid):
        raise SavepointError(f"{path} is being written by process {pid}; not removed")
    freed = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    shutil.rmtree(path)
    return freed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
