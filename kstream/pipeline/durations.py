"""Durations written as ``500ms``, ``10s``, ``5m``, ``1h``, ``1d`` (or a bare integer of ms)."""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
#: ``<integer><unit>`` (also the pattern of a duration in the JSON Schema of ``kstream schema``)
DURATION_PATTERN = re.compile(r"^\s*(-?\d+)\s*(ms|s|m|h|d)\s*$")


def parse_duration_ms(text: object) -> int:
    """Parse a duration into integer milliseconds.

    Args:
        text: ``"<integer><unit>"`` with unit ``ms``, ``s``, ``m``, ``h`` or ``d``; or an ``int``
            already in milliseconds.

    Returns:
        The duration in milliseconds.

    Raises:
        ValueError: for any other form (floats, unknown units, booleans, empty strings).
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int):
        return text
    if isinstance(text, str):
        match = DURATION_PATTERN.match(text)
        if match:
            return int(match.group(1)) * _UNITS_MS[match.group(2)]
    raise ValueError(f"not a duration: {text!r} (write e.g. 500ms, 10s, 5m, 1h, 1d)")


def format_duration_ms(ms: int) -> str:
    """The shortest exact form of ``ms`` in the units above (e.g. ``3600000`` -> ``1h``)."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
