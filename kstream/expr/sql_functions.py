"""Functions with Flink SQL's meaning, for the expressions SQL jobs compile to (docs/sql.md).

Times are epoch milliseconds (ints) in the session time zone UTC. Every function is strict (the
compiled code returns null without calling it when an argument is null), so none sees a null.

- ``sql_timestamp(ms)`` / ``sql_timestamp_ltz(ms)``: a ``TIMESTAMP(3)`` / ``TIMESTAMP_LTZ(3)`` as
  Flink's ``json`` format writes it (``2013-01-01 05:00:00``, a fraction only when not zero,
  ``Z`` after an LTZ);
- ``sql_parse_timestamp(text, kind, standard)``: the epoch ms of a ``TIMESTAMP`` (``kind``
  ``'ts'``) or ``TIMESTAMP_LTZ`` (``'ltz'``) as Flink's ``json`` format reads it, in its
  ``'json.timestamp-format.standard'`` (``'SQL'``: ``2013-01-01 05:00:00[.fff]``, ``'ISO-8601'``:
  ``2013-01-01T05:00:00[.fff]``; an LTZ ends with ``Z``; seconds and fraction optional, as Java's
  ``ISO_LOCAL_TIME``); raises ``ValueError`` for other text (Flink fails the job);
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

__all__ = ["SQL_FUNCTIONS", "timestamp_text_ms"]

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


_SQL_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})([ T])(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z?)"
)


def timestamp_text_ms(text: str) -> tuple[int, str, bool]:
    """``(epoch ms, separator, ends with Z)`` of a SQL or ISO-8601 timestamp text in UTC
    (``2013-01-01 05:00:00.5``, ``2013-01-01T05:00Z``; a fraction beyond ms is cut).

    Raises:
        ValueError: the text is not such a timestamp, or not a valid date and time.
    """
    match = _SQL_TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r:.60} is not a timestamp like 2013-01-01 05:00:00")
    year, month, day, sep, hour, minute, second, fraction, zone = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC
    )
    ms = int(moment.timestamp()) * 1000 + int((fraction or "0")[:3].ljust(3, "0"))
    return ms, sep, zone == "Z"


def sql_parse_timestamp(text: Any, kind: str, standard: str) -> int:
    ms, sep, zoned = timestamp_text_ms(str(text))
    want_sep = "T" if standard == "ISO-8601" else " "
    if sep != want_sep or zoned != (kind == "ltz"):
        example = f"2013-01-01{want_sep}05:00:00{'Z' if kind == 'ltz' else ''}"
        shown = "TIMESTAMP_LTZ" if kind == "ltz" else "TIMESTAMP"
        raise ValueError(f"{text!r:.60} is not a {shown} in the {standard} format ({example})")
    return ms


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
    "sql_parse_timestamp": (sql_parse_timestamp, 3, 3),
    "date_format": (date_format, 2, 2),
    "json_value": (json_value, 2, 3),
    "trim": (_trim, 1, 1),
    "sql_trim": (_sql_trim, 3, 3),
    "sql_like": (_sql_like, 2, 2),
    "replace": (_replace, 3, 3),
    **DECIMAL_FUNCTIONS,
}
