"""The keyed state backend of process functions: handles per key, copies, JSON checks, the
change set a checkpoint writes (each changed key and state once; emptied state deleted) and
restore."""

from __future__ import annotations

import orjson
import pytest

from kstream.errors import RecordError, StateError, UsageError
from kstream.operators.process_state import KeyedStateBackend

DECLARED = (("v", "value"), ("l", "list"), ("m", "map"))


def at(backend: KeyedStateBackend, key: object) -> KeyedStateBackend:
    backend.current_key, backend.active = key, True
    return backend


def test_handles_address_the_current_key_and_return_copies() -> None:
    b = KeyedStateBackend("fn", DECLARED)
    v, lst, m = b.handle("v"), b.handle("l"), b.handle("m")
    at(b, "a")
    v.update({"n": [1]})
    v.value()["n"].append(2)  # a copy: not stored
    lst.add_all([1, 2])
    m.put(3, "three")
    at(b, "b")
    assert v.value("none") == "none" and lst.get() == [] and m.is_empty()
    at(b, "a")
    assert v.value() == {"n": [1]} and len(lst) == 2 and m.get(3) == "three"
    assert list(m.items()) == [(3, "three")]


def test_not_json_and_bad_map_keys_are_record_errors() -> None:
    b = at(KeyedStateBackend("fn", DECLARED), "a")
    with pytest.raises(RecordError, match=r"state 'v' of process 'fn'.*JSON"):
        b.handle("v").update({1, 2})
    with pytest.raises(RecordError, match="map key must be"):
        b.handle("m").put(("x", 1), 1)


def test_undeclared_state_and_state_outside_a_key_are_usage_errors() -> None:
    b = KeyedStateBackend("fn", DECLARED)
    with pytest.raises(UsageError, match="no state 'x' \\(declared: v, l, m\\)"):
        b.handle("x")
    with pytest.raises(UsageError, match="not in open"):
        b.handle("v").value()


def test_changes_hold_each_key_once_and_deletions_only_when_persisted() -> None:
    b = at(KeyedStateBackend("fn", DECLARED), "a")
    b.handle("v").update(1)
    b.handle("v").update(2)
    b.handle("l").add("x")
    b.handle("l").clear()  # never persisted: no deletion
    b.handle("m").put_all({"p": 1, "q": [2]})
    changes = dict(b.changes())
    assert changes == {
        orjson.dumps(["a", "v"]): b"2",
        orjson.dumps(["a", "m"]): b'[["p",1],["q",[2]]]',
    }
    b.handle("m").remove("p")
    b.handle("m").remove("q")  # emptied: deleted
    assert b.changes() == [(orjson.dumps(["a", "m"]), None)]
    assert b.changes() == []


def test_restore_rebuilds_every_kind_and_refuses_a_changed_kind() -> None:
    b = at(KeyedStateBackend("fn", DECLARED), ("k", 1))  # a JSON array key
    b.handle("l").add_all([{"a": 1}, 2])
    b.handle("m").put("x", None)
    b.handle("v").update("s")
    entries = [(k, v) for k, v in b.changes() if v is not None]
    again = at(KeyedStateBackend("fn", (*DECLARED, ("gone", "value"))), ("k", 1))
    again.restore(entries)
    assert again.handle("l").get() == [{"a": 1}, 2]
    assert again.handle("m").contains("x") and again.handle("v").value() == "s"
    changed = KeyedStateBackend("fn", (("v", "list"),))
    with pytest.raises(StateError, match="'v' is not a list"):
        changed.restore([(orjson.dumps(["k", "v"]), b'"s"')])
