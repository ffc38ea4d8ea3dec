"""JSON, string and bytes codecs, and what each kind of poison input produces."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kstream.errors import RecordError
from kstream.io import codecs
from kstream.runtime.policy import error_class

decode_value = codecs.value_decoder("json")
decode_key = codecs.key_decoder("json")


def _nested(depth: int) -> bytes:
    return b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def _bad(raw: bytes | None, decode: Any = decode_value) -> RecordError:
    with pytest.raises(RecordError) as info:
        decode(raw)
    assert info.value.stage == "deserialize"
    return info.value


@pytest.mark.parametrize(
    ("raw", "reason", "cause"),
    [
        (b'{"ts": 1, "origin": "JF', "unexpected end of data", "JSONDecodeError"),
        (b'{"origin": "\xff\xfe"}', "not valid UTF-8", "JSONDecodeError"),
        (b'{"x": NaN}', "invalid JSON", "JSONDecodeError"),
        (b'{"x": Infinity}', "invalid JSON", "JSONDecodeError"),
        (b'{"x": -Infinity}', "invalid JSON", "JSONDecodeError"),
        (b'{"x": 1e400}', "infinity", "JSONDecodeError"),
        (b'{"x": ' + b"9" * 5000 + b"}", "infinity", "JSONDecodeError"),
        (b"\xef\xbb\xbf\xef\xbb\xbf{}", "invalid JSON", "JSONDecodeError"),  # two BOMs
        (_nested(2000), "depth limit", "JSONDecodeError"),  # beyond orjson's own limit
    ],
)
def test_malformed_json_is_a_deserialize_error(raw: bytes, reason: str, cause: str) -> None:
    error = _bad(raw)
    assert reason in error.reason
    assert error_class(error) == cause


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"[1, 2]", "list"), (b"42", "int"), (b'"text"', "str"), (b"null", "null"), (None, "null")],
)
def test_a_value_must_be_an_object(raw: bytes | None, kind: str) -> None:
    assert _bad(raw).reason == f"expected a JSON object, got {kind}"


def test_a_leading_byte_order_mark_is_skipped() -> None:
    assert decode_value(b'\xef\xbb\xbf{"ts": 1}') == {"ts": 1}
    assert decode_key(b'\xef\xbb\xbf"k"') == "k"


def test_nesting_is_limited() -> None:
    assert decode_value(_nested(codecs.MAX_JSON_DEPTH))["a"] is not None
    error = _bad(_nested(codecs.MAX_JSON_DEPTH + 1))
    assert error.reason == f"JSON nested deeper than {codecs.MAX_JSON_DEPTH} levels"
    assert error_class(error) == "RecordError"


def test_many_flat_brackets_are_not_deep() -> None:
    wide = orjson.dumps({"xs": [[i] for i in range(500)], "s": "[[[[{{{{" * 50})
    assert len(decode_value(wide)["xs"]) == 500


def test_large_integers() -> None:
    assert decode_value(b'{"x": 18446744073709551615}') == {"x": 2**64 - 1}
    assert decode_value(b'{"x": 18446744073709551616}') == {"x": float(2**64)}  # orjson: float


def test_keys_may_be_any_json_value() -> None:
    assert decode_key(b"[1, 2]") == [1, 2]
    assert decode_key(None) is None
    assert _bad(b"{", decode_key).stage == "deserialize"


def test_string_and_bytes() -> None:
    assert codecs.value_decoder("string")(b"caf\xc3\xa9") == "café"
    error = _bad(b"\xff", codecs.value_decoder("string"))
    assert "invalid UTF-8" in error.reason and error_class(error) == "UnicodeDecodeError"
    assert codecs.value_decoder("bytes")(b"\xff") == b"\xff"
    assert codecs.encoder("string")({"a": 1}) == b'{"a":1}'
    assert codecs.encoder("string")(5) == b"5"
    assert codecs.encoder("bytes")(b"\x00") == b"\x00"
    assert codecs.encoder("json")(None) is None


def test_unencodable_values_are_serialize_errors() -> None:
    deep: Any = []
    for _ in range(300):  # orjson encodes at most 254 levels
        deep = [deep]
    for value in ({"x": {1, 2}}, deep):
        with pytest.raises(RecordError) as info:
            codecs.encoder("json")(value)
        assert info.value.stage == "serialize"
    with pytest.raises(RecordError):
        codecs.encoder("string")({"x": object()})
