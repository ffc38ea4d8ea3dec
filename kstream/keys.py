"""Record keys as Python dict keys: a JSON-decoded key (any JSON value) made hashable, the same
way wherever keys are read back from state (window keys, timers, savepoints)."""

from __future__ import annotations

from typing import Any

import orjson


def hashable(key: Any) -> Any:
    """A JSON-decoded key made usable as a dict key: lists become tuples (recursively), objects
    their JSON text with sorted keys; other values are returned as they are."""
    if isinstance(key, list):
        return tuple(hashable(k) for k in key)
    if isinstance(key, dict):
        return orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()
    return key
