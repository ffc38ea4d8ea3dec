"""Time-to-live of a process function's declared state (docs/process-functions.md, "State
TTL"; Flink ``StateTtlConfig``).

A state declared with ``ttl`` stamps what is written: a value or a whole list per (record key,
state name), a map per map entry. The stamp is, in event time (``time: event``, the default),
the current record's timestamp (in ``on_timer``: the timer's), in processing time the wall
clock (epoch ms). A stamped entry is expired when ``stamp + ttl <= now``, ``now`` being the
node's watermark (event time) or the processing time. Only writes stamp (Flink
``OnCreateAndWrite``): reads do not extend the life.

Where it lives (:class:`StateTtl`), nothing of it per entry in Python objects:

- **the stamps** are entries of the node's state store, next to the state's (see
  :mod:`kstream.operators.process_state`): key ``[record key, state name, "ttl"]``, value
  ``[stamp ms, time]`` for a value or list, ``[[[map key, stamp ms], ...], time]`` for a map.
  They are written when the entry is (through the store's bounded cache) and read from the
  store when a read checks expiry;
- **the expiry index** is a :class:`~kstream.time.timers.TimerService` over the node's ``ttl``
  store (``op.<node-id>.ttl``, checkpointed, restored, re-sharded and saved like the
  ``timers`` store, which holds only the user's timers): one timer per (record key, namespace,
  expiry ms) in the state's time domain, the namespace being the state name (a value or list)
  or ``[state name, map key]``. With local state only the earliest timers and those
  registered since the last checkpoint are in memory (:mod:`kstream.time.stored_timers`). A
  write deletes the timer of the old stamp and registers the new one; the sweep advances the
  service to the watermark or the processing time and removes an entry when its timer fires
  and the stored stamp still gives that expiry (a timer left by an earlier declaration is
  dropped as it fires);
- **the declarations** ``(state name, ttl ms, time)`` the stamps and timers were made under:
  the entry :data:`DECLARED_KEY` of the ``ttl`` store. A restore compares them with the
  current ones; only when they differ (a ttl added, changed or removed, a time domain changed,
  or state written before the ``ttl`` store existed) does the node pass over its entries once
  to restamp and re-index them (:meth:`StateTtl.rebuild`).

An entry restored without a stamp of its domain (a ttl added, or its ``time`` changed) is
stamped at the domain's current time; in event time before any watermark, at the first
watermark: until then it holds the timer :data:`PENDING`, which fires with the first
watermark and stamps it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import orjson

from kstream.operators.process_codec import (
    TTL_MARK,
    Stamp,
    StoreKey,
    decode_stamp,
)
from kstream.state.cache import Backend, KeyValueStore
from kstream.time.timers import OnTimer, TimerService
from kstream.time.valve import MIN_WATERMARK

#: ``(state name, ttl ms, time)`` declarations (``time``: ``event`` or ``processing``).
TtlDeclared = tuple[tuple[str, int, str], ...]
TIMES = ("event", "processing")
#: The time of the event-time timer of a restored entry waiting for the first watermark.
PENDING = MIN_WATERMARK
#: The ``ttl`` store's entry of the declarations (sorts before every timer key, ``e``/``p``).
DECLARED_KEY = b"declared"


class _Whole:
    """The marker of a stamp covering a key's whole entry (a value or a list)."""

    def __repr__(self) -> str:
        return "WHOLE"


#: The map key of a stamp that covers the whole entry (value and list states).
WHOLE: Any = _Whole()


def namespace(name: str, mk: Any) -> Any:
    """The timer namespace of ``mk`` (a map key or :data:`WHOLE`) of state ``name``."""
    return name if mk is WHOLE else (name, mk)


def split_namespace(ns: Any) -> tuple[str | None, Any]:
    """Inverse of :func:`namespace`: ``(state name, map key or WHOLE)``; the name is None for
    a namespace that is neither."""
    if isinstance(ns, str):
        return ns, WHOLE
    if isinstance(ns, tuple) and len(ns) == 2 and isinstance(ns[0], str):
        return ns[0], ns[1]
    return None, WHOLE


def declarations(declared: TtlDeclared) -> bytes | None:
    """The stored form of ``declared`` (None when no state has a ttl)."""
    if not declared:
        return None
    return orjson.dumps({"ttl": sorted([n, ms, t] for n, ms, t in declared)})


class DeclaredIndex:
    """An expiry index over a node's ``ttl`` store together with the declaration it was built
    under (the entry :data:`DECLARED_KEY`): shared by the process functions' TTL
    (:class:`StateTtl`) and idle state retention (:class:`~kstream.operators.idle_ttl.IdleTtl`).

    Attributes:
        timers: the index (in memory until the owner binds it to the ``ttl`` store).
        declared: the declaration's bytes (None: nothing to declare).
        saved: whether the ``ttl`` store holds :attr:`declared` (else the next checkpoint
            writes it).
    """

    timers: TimerService
    declared: bytes | None
    saved: bool

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """The ``ttl`` store's changes since the last call: the timers', and the declaration
        when the store does not hold it yet."""
        out = self.timers.changes()
        if not self.saved:
            out.append((DECLARED_KEY, self.declared))
            self.saved = True
        return out

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> bool:
        """Start from the ``ttl`` store's ``entries`` (with a backend, which holds them, they
        are not read). Returns whether they were written under the current declaration; if
        not, the owner re-indexes its entries.

        Raises:
            ValueError: an entry is neither a timer nor the declaration.
        """
        saved: bytes | None = None
        backend = self.timers.backend
        if backend is not None:
            self.timers.restore(())
            saved = backend.get(DECLARED_KEY)
        else:
            timers: list[tuple[bytes, bytes]] = []
            for raw, value in entries:
                if raw == DECLARED_KEY:
                    saved = value
                else:
                    timers.append((raw, value))
            self.timers.restore(timers)
        self.saved = (None if saved is None else bytes(saved)) == self.declared
        return self.saved


class StateTtl(DeclaredIndex):
    """The stamps and the expiry index of the TTL states of one process node in one task (see
    the module docstring).

    Args:
        declared: ``(state name, ttl ms, time)`` for each state with a ttl.
        maps: the names of the map states (stamped per map entry).
        store: the node's state store (the stamps' store; :meth:`bind` replaces it).

    Attributes:
        timers: the expiry index (in memory until :meth:`bind` gives it a backend).
        stamp_entries: the stamp entries in ``store`` (the rest are state entries).

    A restore under other declarations (:meth:`restore` False) is followed by :meth:`rebuild`.
    """

    def __init__(
        self, declared: TtlDeclared, maps: Iterable[str], store: KeyValueStore[StoreKey, Any]
    ) -> None:
        self.rules: dict[str, tuple[int, str]] = {name: (ms, t) for name, ms, t in declared}
        self.maps = frozenset(maps) & set(self.rules)
        self.times = frozenset(t for _, t in self.rules.values())
        self.store = store
        self.timers = TimerService()
        self.declared = declarations(declared)
        #: whether the ``ttl`` store holds :attr:`declared` (else the next checkpoint writes it)
        self.saved = self.declared is None
        self.stamp_entries = 0

    def bind(
        self, store: KeyValueStore[StoreKey, Any], backend: Backend | None, head: int | None
    ) -> None:
        """Keep the stamps in ``store`` and the index over ``backend`` (the ``ttl`` store; None:
        in memory), ``head`` timers per domain in memory (None: the default)."""
        self.store = store
        self.timers = TimerService(backend, head)

    def time_of(self, name: str) -> str | None:
        """The time domain of state ``name``'s ttl; None when it has none."""
        rule = self.rules.get(name)
        return None if rule is None else rule[1]

    # -- stamps ---------------------------------------------------------------------------------

    def held(self, key: Any, name: str) -> Stamp | None:
        """The stored stamp of ``key``'s entry of ``name``, None when none (or unreadable)."""
        found = self.store.get((key, name, TTL_MARK))
        if found is None or isinstance(found, tuple):
            return found
        return decode_stamp(found)

    def stamps_of(self, key: Any, name: str) -> dict[Any, int]:
        """``key``'s stamps of TTL state ``name`` in its time domain: ``{WHOLE: ms}`` for a
        value or list, ``{map key: ms}`` for a map (a new dict, or the store's: put it back);
        empty when none (a stamp of the other domain counts as none)."""
        return self._live(name, self.held(key, name))

    def _live(self, name: str, held: Stamp | None) -> dict[Any, int]:
        if held is None or held[1] != self.rules[name][1]:
            return {}
        at = held[0]
        if name in self.maps:
            return at if isinstance(at, dict) else {}
        return {WHOLE: at} if isinstance(at, int) else {}

    def put_stamps(self, key: Any, name: str, stamps: dict[Any, int]) -> None:
        """Store ``stamps`` (as :meth:`stamps_of` gives them; empty: delete the stamp)."""
        store = self.store
        skey, before = (key, name, TTL_MARK), store.count
        if not stamps:
            store.delete(skey)
        else:
            at = stamps if name in self.maps else stamps[WHOLE]
            store.put(skey, (at, self.rules[name][1]))
        self.stamp_entries += store.count - before

    def expired(self, name: str, key: Any, now: int) -> list[Any]:
        """What of ``key``'s entry of state ``name`` is expired at ``now`` (its domain's time):
        ``[WHOLE]`` for a value or list, the expired map keys for a map; empty when nothing."""
        ms = self.rules[name][0]
        return [mk for mk, at in self.stamps_of(key, name).items() if at + ms <= now]

    def stamp(
        self,
        name: str,
        key: Any,
        at: int,
        entry: Any,
        written: Iterable[Any] = (),
        removed: Iterable[Any] = (),
    ) -> None:
        """``key``'s entry of ``name`` was written (``entry``: its handle form; None: deleted):
        stamp with ``at`` (ms) the whole entry, or of a map the entries ``written``, drop the
        stamps of the map entries ``removed``, and move their timers. Before the first
        watermark, a restored map entry still without a stamp is stamped too."""
        stamps = self.stamps_of(key, name)
        pending = self.rules[name][1] == "event" and self.timers.next_event_time == PENDING
        if entry is None:
            self._clear(name, key, stamps, pending)
            return
        changed = False
        for mk in removed:
            if mk in stamps:
                self._delete(name, key, mk, stamps.pop(mk))
                changed = True
        if name not in self.maps:
            written = (WHOLE,)
        elif pending:
            written = [*written, *(mk for mk in entry if mk not in stamps)]
        for mk in written:
            before = stamps.get(mk)
            if before != at:
                if before is not None or pending:  # None: the PENDING timer
                    self._delete(name, key, mk, before)
                self._register(name, key, mk, at)
                stamps[mk] = at
                changed = True
        if changed:
            self.put_stamps(key, name, stamps)

    def _clear(self, name: str, key: Any, stamps: dict[Any, int], pending: bool) -> None:
        """``key``'s entry of ``name`` was deleted: drop its ``stamps`` and their timers
        (``pending``: a value's or list's PENDING timer may be left; a map's are dropped as
        they fire)."""
        for mk, at in stamps.items():
            self._delete(name, key, mk, at)
        if pending and name not in self.maps:
            self._delete(name, key, WHOLE, None)
        if stamps:
            self.put_stamps(key, name, {})

    def unstamp(
        self,
        name: str,
        key: Any,
        mks: Collection[Any],
        fired: bool = False,
        stamps: dict[Any, int] | None = None,
    ) -> None:
        """Drop the stamps of ``mks`` (map keys or ``[WHOLE]``) of ``key``'s entry of ``name``
        and their timers (``fired``: their timers fired, gone already); every stamp of the
        entry when ``mks`` holds :data:`WHOLE`. ``stamps``: the entry's, when just read."""
        if stamps is None:
            stamps = self.stamps_of(key, name)
        gone = dict(stamps) if WHOLE in mks else {mk: stamps[mk] for mk in mks if mk in stamps}
        if not gone:
            return
        if not fired:
            for mk, at in gone.items():
                self._delete(name, key, mk, at)
        self.put_stamps(key, name, {k: v for k, v in stamps.items() if k not in gone})

    def stamp_waiting(self, name: str, key: Any, mk: Any, now: int) -> None:
        """The first watermark, ``now``, reached the restored entry ``mk`` of ``key``'s entry of
        ``name`` (which exists): stamp it unless a write stamped it since."""
        stamps = self.stamps_of(key, name)
        if mk not in stamps:
            stamps[mk] = now
            self._register(name, key, mk, now)
            self.put_stamps(key, name, stamps)

    # -- the index --------------------------------------------------------------------------

    def _register(self, name: str, key: Any, mk: Any, at: int | None) -> None:
        """Index the expiry of stamp ``at`` (None: :data:`PENDING`)."""
        ms, time = self.rules[name]
        ts = PENDING if at is None else at + ms
        if time == "event":
            self.timers.register_event_time(ts, key, namespace(name, mk))
        else:
            self.timers.register_processing_time(ts, key, namespace(name, mk))

    def _delete(self, name: str, key: Any, mk: Any, at: int | None) -> None:
        """Remove the expiry timer of stamp ``at`` (None: the :data:`PENDING` one)."""
        ms, time = self.rules[name]
        ts = PENDING if at is None else at + ms
        if time == "event":
            self.timers.delete_event_time(ts, key, namespace(name, mk))
        elif at is not None:
            self.timers.delete_processing_time(ts, key, namespace(name, mk))

    def advance(self, time: str, now: int, on_timer: OnTimer) -> None:
        """Fire every expiry timer of domain ``time`` due at ``now`` (ms): ``on_timer(expiry,
        record key, namespace)`` in expiry order. Event time before any watermark fires
        nothing."""
        timers = self.timers
        if time == "event":
            if now > MIN_WATERMARK and timers.next_event_time <= now:
                timers.advance_event_time(now, on_timer)
            return
        due = timers.next_processing_time
        if due is not None and due <= now:
            timers.advance_processing_time(now, on_timer)

    def rebuild(self, name: str, key: Any, mks: list[Any], now: int) -> None:
        """Re-index the restored entry of ``key`` in TTL state ``name`` (``mks``: its map keys,
        or ``[WHOLE]``) after the declarations changed: a stamp of its domain is kept and
        indexed, the rest stamped at ``now`` (its domain's time; event time before any
        watermark: :data:`PENDING`); stamps of map keys it no longer holds are dropped."""
        held = self.held(key, name)
        old = self._live(name, held)
        kept = {mk: old[mk] for mk in mks if mk in old}
        for mk, at in kept.items():
            self._register(name, key, mk, at)
        waiting = self.rules[name][1] == "event" and now == MIN_WATERMARK
        for mk in mks:
            if mk not in kept:
                if not waiting:
                    kept[mk] = now
                self._register(name, key, mk, None if waiting else now)
        if kept != old or (held is None) != (not old):
            self.put_stamps(key, name, kept)

    # -- checkpoints ------------------------------------------------------------------------

    def stored(self, name: str) -> dict[Any, Any]:
        """State ``name``'s stamps by record key: ms for a value or list, ``{map key: ms}`` for
        a map (a scan of the store, for tests and tools)."""
        out: dict[Any, Any] = {}
        for skey, _held in self.store.items():
            if len(skey) == 3 and skey[1] == name:
                stamps = self.stamps_of(skey[0], name)
                out[skey[0]] = stamps if name in self.maps else stamps.get(WHOLE)
        return out
