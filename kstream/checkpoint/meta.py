"""Task metadata: the bookkeeping a task checkpoints next to its state (input position,
watermark, upstream watermarks, end-of-input, duplicate detection of repartition records).

It travels in every checkpoint under :data:`META_KEY` (local RocksDB, changelog, savepoint).
"""

from __future__ import annotations

from typing import Any

from kstream.state.store import META_KEY
from kstream.time.watermarks import ACTIVE, MIN_WATERMARK

__all__ = ["META_KEY", "initial_meta"]


def initial_meta(position: int | None = None, watermark: int = MIN_WATERMARK) -> dict[str, Any]:
    """Metadata of a task that has processed nothing: next input offset ``position``
    (None: the beginning) and watermark ``watermark`` (epoch ms)."""
    return {
        "position": position,
        "watermark": watermark,
        "source": None,
        "upstream": None,
        "finished": False,
        "stopped_by": None,
        "marker": [MIN_WATERMARK, ACTIVE],
        "seen": {},
    }
