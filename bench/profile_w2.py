"""Profile kstream on W2: ``python -m bench.profile_w2 [--tool py-spy|cprofile] [--records N]``.

Starts a local broker, loads the benchmark events (same generator and seed as ``make bench``),
runs W2 (``bench/pipelines/w2-window.yaml``) once under the profiler, checks its output like a
benchmark run, and prints the top functions by self time and by inclusive time, as a percentage
of the samples of the kstream process (py-spy; idle threads excluded, so time blocked in
librdkafka's C code without the GIL does not count) or of its profiled time (cProfile, which
slows Python code down unevenly: prefer py-spy for percentages).

Files (default directory ``bench/data/``, which git ignores): ``w2.pyspy.raw`` (collapsed
stacks; feed it to any flamegraph tool) and ``w2-profile.txt`` (the tables), or ``w2.prof``
(pstats) with cProfile.
"""

from __future__ import annotations

import argparse
import pstats
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

from bench import harness

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``module.py:func``."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    marker = "site-packages/"
    if marker in path:
        path = path.split(marker, 1)[1]
    elif "/work/main/" in path:
        path = path.split("/work/main/", 1)[1]
    return f"{path}:{m.group('func')}"


def analyse_pyspy(raw: Path, top: int = 25) -> str:
    """Self and inclusive percentages per function from py-spy's raw (collapsed) output."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    lines = [f"py-spy: {total} samples of the kstream process (active threads only)", ""]
    lines.append(f"{'self %':>7}  function")
    for name, n in self_time.most_common(top):
        lines.append(f"{100 * n / total:7.1f}  {name}")
    lines += ["", f"{'incl. %':>7}  function"]
    for name, n in inclusive.most_common(top + 15):
        lines.append(f"{100 * n / total:7.1f}  {name}")
    return "\n".join(lines)


def analyse_cprofile(path: Path, top: int = 25) -> str:
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = stats.stats  # type: ignore[attr-defined]
    lines = [
        f"cProfile: {total:.2f} s of profiled time",
        "",
        f"{'self %':>7}  {'calls':>10}  function",
    ]
    by_self = sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for (file, line, func), (_cc, nc, tt, _ct, _callers) in by_self:
        lines.append(f"{100 * tt / total:7.1f}  {nc:>10}  {_short(f'{func} ({file}:{line})')}")
    lines += ["", f"{'incl. %':>7}  function"]
    by_cum = sorted(rows.items(), key=lambda kv: kv[1][3], reverse=True)[: top + 15]
    for (file, line, func), (_cc, _nc, _tt, ct, _callers) in by_cum:
        lines.append(f"{100 * ct / total:7.1f}  {_short(f'{func} ({file}:{line})')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_w2", description=__doc__)
    p.add_argument("--tool", choices=("py-spy", "cprofile"), default="py-spy")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--out", type=Path, default=harness.ROOT / "bench" / "data")
    p.add_argument(
        "--job", default="W2", choices=[n for n, j in harness.JOBS.items() if j.engine == "kstream"]
    )
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    config = harness.parse_args(
        [
            "--records",
            str(args.records),
            "--runs",
            "1",
            "--jobs",
            args.job,
            "--results",
            str(args.out / "profile-results.json"),
        ]
    )
    h = harness.Harness(config)
    stem = args.job.lower()
    if args.tool == "py-spy":
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        output = args.out / f"{stem}.pyspy.raw"
        h.wrapper = [
            pyspy,
            "record",
            "--format",
            "raw",
            "--rate",
            str(args.rate),
            "--output",
            str(output),
            "--",
        ]
    else:
        output = args.out / f"{stem}.prof"
        h.python_args = ["-m", "cProfile", "-o", str(output)]
    try:
        h.start()
        h.load()
        result = h.run_job(harness.JOBS[args.job], 1)
    finally:
        h.stop()
        shutil.rmtree(config.workdir, ignore_errors=True)
    if not result.ok:
        print(f"{args.job} failed under the profiler: {result.detail}", file=sys.stderr)
        return 1
    report = analyse_pyspy(output) if args.tool == "py-spy" else analyse_cprofile(output)
    header = (
        f"{args.job} on {args.records:,} events under {args.tool}: wall {result.wall_s:.1f} s "
        f"(profiler overhead included), first record after {result.first_record_s or 0:.1f} s"
    )
    text = header + "\n\n" + report + "\n"
    (args.out / f"{stem}-profile-{args.tool}.txt").write_text(text)
    print(text)
    print(f"raw profile: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
