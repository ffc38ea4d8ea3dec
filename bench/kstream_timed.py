"""``kstream`` exactly as the console script runs it, plus one measurement and one (switchable)
workaround.

The harness runs ``python -m bench.kstream_timed run PIPELINE --bounded ...`` instead of
``.venv/bin/kstream run ...``: the same click command in the same kind of process.

Measurement: when ``KSTREAM_BENCH_FIRST_RECORD`` names a file, the wall-clock time
(``time.time()``) of the first consumed batch holding a record is appended there as a line at
exit (one line per process: ``--processes N`` starts its children with this same module, see
``KSTREAM_CHILD_MODULE``, ``kstream_cli.run_processes.child_program``).

Workaround (``KSTREAM_BENCH_EOF_ORDER=1``; harness flag ``--eof-workaround 1``; off by
default): older engine versions (the working tree before about 2026-11-21 07:50 UTC) handled a
partition's end-of-partition event in ``Runner._dispatch`` as soon as they met it in a consumed
batch, while the records preceding it in the same batch were only processed after that loop; with
``--bounded`` the task was already finished and those records were silently dropped (a whole
partition was lost when its data and its EOF arrived in one ``consume()``). The workaround splits
a batch holding events into two calls of the engine's own ``_dispatch``: records first, then
events. The current engine ends a source task only once its position has reached the end offset
(``Runner._end_if_done``), so the workaround is a no-op there.

Both hooks wrap the runner's methods without replacing their logic; if the runner's internals
change they silently do nothing.
"""

from __future__ import annotations

import atexit
import os
import time
from typing import Any


def _install(first_record_path: str | None, eof_order: bool) -> None:
    try:
        from kstream.runtime.runner import Runner
    except ImportError:
        return
    engine_dispatch = getattr(Runner, "_dispatch", None)
    if engine_dispatch is None:
        return
    dispatch = engine_dispatch

    if eof_order:

        def ordered(self: Any, msgs: list[Any]) -> Any:
            events = [m for m in msgs if m.error() is not None]
            if not events:
                return engine_dispatch(self, msgs)
            engine_dispatch(self, [m for m in msgs if m.error() is None])
            return engine_dispatch(self, events)

        dispatch = ordered
        Runner._dispatch = ordered  # type: ignore[method-assign]

    if first_record_path:
        seen: list[float] = []
        steady = dispatch

        def timed(self: Any, msgs: list[Any]) -> Any:
            if not seen and any(m.error() is None for m in msgs):
                seen.append(time.time())
                Runner._dispatch = steady  # type: ignore[method-assign]
            return steady(self, msgs)

        Runner._dispatch = timed  # type: ignore[method-assign]

        def write() -> None:  # appended: the children of --processes share the file
            if seen:
                with open(first_record_path, "a") as handle:
                    handle.write(f"{seen[0]!r}\n")

        atexit.register(write)


if __name__ == "__main__":
    _install(
        os.environ.get("KSTREAM_BENCH_FIRST_RECORD"),
        os.environ.get("KSTREAM_BENCH_EOF_ORDER", "0") not in ("", "0"),
    )
    from kstream_cli.main import main

    main()
