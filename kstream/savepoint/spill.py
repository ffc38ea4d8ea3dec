"""Store entries of a savepoint sorted out by the task that gets them, on disk.

Restoring a savepoint routes every saved entry to a task of the new run (by partition, or by
the key's hash when the job rescales). :class:`EntrySpill` does that in one pass over the
savepoint's files and keeps the result in files of a temporary directory, one per (task,
column family), so a savepoint far larger than memory restores with a bounded footprint: small
write buffers while routing, one entry at a time while a task is seeded.

File format: records of ``>II`` (key length, value length), then the key and value bytes.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: (stage id, partition, column family)
Target = tuple[str, int, str]
_HEADER = struct.Struct(">II")
#: bytes a target's buffer holds before it is appended to its file
BUFFER_BYTES = 64 * 1024


class EntrySpill:
    """Entries by target task and column family, written to a temporary directory (removed by
    :meth:`close`, or when the object is collected).

    Raises:
        OSError: the temporary directory cannot be written or read.
    """

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="kstream-seed-")
        self._files: dict[Target, Path] = {}
        self._buffers: dict[Target, bytearray] = {}

    def add(self, target: Target, key: bytes, value: bytes) -> None:
        """Append one entry for ``target``."""
        buffer = self._buffers.get(target)
        if buffer is None:
            buffer = self._buffers[target] = bytearray()
            self._files[target] = Path(self._dir.name) / f"{len(self._files)}.bin"
        buffer += _HEADER.pack(len(key), len(value))
        buffer += key
        buffer += value
        if len(buffer) >= BUFFER_BYTES:
            self._flush(target)

    def finish(self) -> None:
        """Write every buffer out (call once, after the last :meth:`add`)."""
        for target in self._buffers:
            self._flush(target)

    def _flush(self, target: Target) -> None:
        buffer = self._buffers[target]
        with self._files[target].open("ab") as out:
            out.write(buffer)
        buffer.clear()

    def column_families(self, stage_id: str, partition: int) -> list[str]:
        """The column families with entries for task ``stage_id:partition``."""
        return [cf for (s, p, cf) in self._files if s == stage_id and p == partition]

    def read(self, target: Target) -> Iterator[tuple[bytes, bytes]]:
        """The entries of ``target`` in the order they were added (none if it has none)."""
        path = self._files.get(target)
        if path is None or not path.exists():
            return
        size = _HEADER.size
        with path.open("rb", buffering=1 << 20) as data:
            while header := data.read(size):
                key_len, value_len = _HEADER.unpack(header)
                yield data.read(key_len), data.read(value_len)

    def close(self) -> None:
        """Remove the files."""
        self._dir.cleanup()
