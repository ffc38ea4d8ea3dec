"""Durations written as ``500ms``, ``10s``, ``5m``, ``1h``, ``1d`` (or a bare integer of ms)."""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
#: ``<integer><unit>`` (also the pattern of a duration in the JSON Schema of ``kstream schema``)
DURATION_PATTERN = re.compile(r"^\s*(-?\d+)\s*(ms|s|m|h|d)\s*$")
#: What a duration may be, for messages.
ACCEPTED = "an integer with a unit ms, s, m, h or d (500ms, 10s, 5m, 1h, 1d), or an integer of ms"
#: A number and a word, e.g. ``5 minutes``, ``1.5h``, ``2 Hours`` (see :func:`suggest_duration`).
_SPELLED = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$")
_WEEK_MS = 7 * _UNITS_MS["d"]
#: Unit words :func:`suggest_duration` understands, and their length in ms.
_WORD_MS = {
    **dict.fromkeys(("ms", "msec", "msecs", "milli", "millis", "millisecond", "milliseconds"), 1),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), _UNITS_MS["s"]),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), _UNITS_MS["m"]),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), _UNITS_MS["h"]),
    **dict.fromkeys(("d", "day", "days"), _UNITS_MS["d"]),
    **dict.fromkeys(("w", "week", "weeks"), _WEEK_MS),
}


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
    fix = suggest_duration(text)
    shown = f"not a duration: {text!r}; expected {ACCEPTED}"
    raise ValueError(f"{shown}; write {fix}" if fix else shown)


def suggest_duration(text: object) -> str | None:
    """The accepted spelling of a duration written with a unit word or a fraction.

    Returns:
        e.g. ``5m`` for ``"5 minutes"``, ``90m`` for ``"1.5h"``, ``1500ms`` for ``1.5s``
        (``"1 week"``: ``7d``); None when ``text`` is not a number and a known unit word, or
        is not a whole number of milliseconds.
    """
    if not isinstance(text, str):
        return None
    match = _SPELLED.match(text)
    unit_ms = _WORD_MS.get(match.group(2).lower()) if match else None
    if match is None or unit_ms is None:
        return None
    ms = float(match.group(1)) * unit_ms
    if not ms.is_integer():
        return None
    return format_duration_ms(int(ms)) if ms >= 0 else "-" + format_duration_ms(int(-ms))


def format_duration_ms(ms: int) -> str:
    """The shortest exact form of ``ms`` in the units above (e.g. ``3600000`` -> ``1h``)."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_size_bytes(value: object) -> int:
    """A size in bytes: ``64MB``, ``512KiB``, ``1GB`` or an int of bytes (pydantic's
    ``ByteSize``: MB = 1000**2, MiB = 1024**2); the caller checks it is positive.

    Raises:
        ValueError: ``value`` is not a size.
    """
    from pydantic import ByteSize, TypeAdapter, ValidationError

    try:
        return int(TypeAdapter(ByteSize).validate_python(value))
    except ValidationError as exc:
        raise ValueError(f"not a size: {value!r}") from exc
