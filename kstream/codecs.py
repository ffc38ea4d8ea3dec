"""Value and key formats: ``json`` (orjson), ``string`` (UTF-8) and ``bytes``.

Decoders take bytes (or None) and raise :class:`~kstream.errors.RecordError` with stage
``deserialize``; encoders take Python values and raise it with stage ``serialize``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from kstream.errors import RecordError

Decoder = Callable[[bytes | None], Any]
Encoder = Callable[[Any], bytes | None]


def _json_decode(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RecordError("deserialize", f"invalid JSON: {exc}") from None


def _json_object_decode(raw: bytes | None) -> Any:
    value = _json_decode(raw)
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        raise RecordError("deserialize", f"expected a JSON object, got {kind}")
    return value


def _string_decode(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("deserialize", f"invalid UTF-8: {exc}") from None


def _bytes_decode(raw: bytes | None) -> Any:
    return raw


def _json_encode(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise RecordError("serialize", f"cannot encode as JSON: {exc}") from None


def _string_encode(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    return orjson.dumps(value) if isinstance(value, (dict, list, tuple)) else str(value).encode()


def _bytes_encode(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return _string_encode(value)


def value_decoder(fmt: str) -> Decoder:
    """Decoder for a source value: ``json`` requires an object (a dict) per record."""
    return {"json": _json_object_decode, "string": _string_decode, "bytes": _bytes_decode}[fmt]


def key_decoder(fmt: str) -> Decoder:
    """Decoder for a record key (any JSON value for ``json``)."""
    return {"json": _json_decode, "string": _string_decode, "bytes": _bytes_decode}[fmt]


def encoder(fmt: str) -> Encoder:
    """Encoder for sink keys and values."""
    return {"json": _json_encode, "string": _string_encode, "bytes": _bytes_encode}[fmt]
