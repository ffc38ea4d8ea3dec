"""Functions with Flink SQL's meaning, for the expressions SQL jobs compile to (docs/sql.md).

Times are epoch milliseconds (ints) in the session time zone UTC. Every function is strict (the
compiled code returns null without calling it when an argument is null), so none sees a null.

- ``sql_timestamp(ms)`` / ``sql_timestamp_ltz(ms)``: a ``TIMESTAMP(3)`` / ``TIMESTAMP_LTZ(3)`` as
  Flink's ``json`` format writes it (``2013-01-01 05:00:00``, a fraction only when not zero,
  ``Z`` after an LTZ);
- ``date_format(ms, pattern)``: Flink's ``DATE_FORMAT`` with a Java ``DateTimeFormatter``
  pattern (letters ``y M d D H m s S``, ``'quoted'`` text; others refused);
- ``json_value(text, path [, returning])``: Flink's ``JSON_VALUE(text, '$.a.b[0]')``: the
  scalar at the path as text (``true``, ``1``, ``1.5``), or converted (``returning`` ``int``,
  ``float``, ``bool``); null when the path is missing, the value is not a scalar or does not
  convert, or the text is not JSON (Flink's default ``NULL ON EMPTY``/``ON ERROR``);
- ``trim(s)``: SQL ``TRIM(s)``, spaces only (Python's ``strip`` also removes tabs and newlines);
  ``sql_trim(s, chars, where)``: ``TRIM(LEADING | TRAILING | BOTH chars FROM s)``;
- ``sql_like(s, pattern)``: SQL ``LIKE`` (``%`` any text, ``_`` one character, whole string);
- ``replace(s, old, new)``: SQL ``REPLACE``;
- the DECIMAL arithmetic of :mod:`kstream.expr.sql_decimals` (``decimal``, ``dec_div``, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kstream.expr.sql_decimals import DECIMAL_FUNCTIONS

__all__ = ["SQL_FUNCTIONS"]

_PATTERN_TOKEN = re.compile(r"'[^']*'|([yMdDHmsS])\1*|.", re.DOTALL)
_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _moment(ms: Any, name: str) -> datetime:
    if type(ms) is not int:
        raise TypeError(f"{name}() takes epoch milliseconds, got {type(ms).__name__}")
    return datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000)


def sql_timestamp(ms: Any, zone_suffix: str = "") -> str:
    moment = _moment(ms, "sql_timestamp")
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}".rstrip("0")
    return text + zone_suffix


def sql_timestamp_ltz(ms: Any) -> str:
    return sql_timestamp(ms, "Z")


def _field(moment: datetime, letter: str, width: int) -> str:
    values = {
        "y": moment.year,
        "M": moment.month,
        "d": moment.day,
        "H": moment.hour,
        "m": moment.minute,
        "s": moment.second,
        "D": moment.timetuple().tm_yday,
    }
    if letter == "S":
        return f"{moment.microsecond // 1000:03d}"[:width].ljust(width, "0")
    if letter == "y" and width == 2:
        return f"{moment.year % 100:02d}"
    return f"{values[letter]:0{width}d}"


def date_format(ms: Any, pattern: Any) -> str:
    moment = _moment(ms, "date_format")
    out = []
    for match in _PATTERN_TOKEN.finditer(str(pattern)):
        token = match.group(0)
        if match.group(1):
            out.append(_field(moment, token[0], len(token)))
        elif token.startswith("'"):
            out.append(token[1:-1] if token != "''" else "'")
        elif token.isalpha():
            raise ValueError(f"date_format(): pattern letter {token!r} is not supported")
        else:
            out.append(token)
    return "".join(out)


def json_value(text: Any, path: Any, returning: Any = "str") -> Any:
    found = _json_scalar(text, path)
    if found is None or returning == "str":
        return found
    try:
        if returning == "int":
            return int(found) if re.fullmatch(r"-?\d+", found) else None
        if returning == "float":
            return float(found)
        return {"true": True, "false": False}.get(found)
    except ValueError:
        return None


def _json_scalar(text: Any, path: Any) -> str | None:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    rest = str(path)
    if not rest.startswith("$"):
        return None
    for step in _PATH_STEP.finditer(rest, 1):
        key, index = step.groups()
        if key is not None and isinstance(value, dict):
            value = value.get(key)
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _trim(s: Any) -> str:
    return str(s).strip(" ")


def _sql_trim(s: Any, chars: Any, where: Any) -> str:
    text, chars = str(s), str(chars)
    if where == "leading":
        return text.lstrip(chars)
    if where == "trailing":
        return text.rstrip(chars)
    return text.strip(chars)


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = ["." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _sql_like(s: Any, pattern: Any) -> bool:
    return _like_regex(str(pattern)).fullmatch(str(s)) is not None


def _replace(s: Any, old: Any, new: Any) -> str:
    return str(s).replace(str(old), str(new))


#: name -> (callable, minimum arguments, maximum arguments), merged into the language's functions
SQL_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "sql_timestamp": (sql_timestamp, 1, 1),
    "sql_timestamp_ltz": (sql_timestamp_ltz, 1, 1),
    "date_format": (date_format, 2, 2),
    "json_value": (json_value, 2, 3),
    "trim": (_trim, 1, 1),
    "sql_trim": (_sql_trim, 3, 3),
    "sql_like": (_sql_like, 2, 2),
    "replace": (_replace, 3, 3),
    **DECIMAL_FUNCTIONS,
}
