"""Per-job results: one :class:`RunResult` per run, medians per job, the issue's targets, and
the table (terminal and Markdown)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.jobs import EVENT_WORKLOADS, JOBS

#: Issue 13: W5's peak RSS must stay below this (MB) with the default state cache.
W5_RSS_TARGET_MB = 400.0


@dataclass
class RunResult:
    """One run of one job (seconds, MB; ``broker_cpu_s``/``other_cpu_s`` ``None`` when not
    measurable, e.g. an external broker; ``state_bytes``: the state directories on disk after
    the run, ``None`` for jobs without one)."""

    job: str
    run: int
    records: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    first_record_s: float | None
    ok: bool
    detail: str
    outputs: int = 0
    returncodes: list[int] = field(default_factory=list)
    broker_cpu_s: float | None = None
    other_cpu_s: float | None = None
    state_bytes: int | None = None

    @property
    def rate(self) -> float:
        return self.records / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_rate(self) -> float:
        """Input records per CPU second of the job's process(es): insensitive to other load on
        the machine."""
        return self.records / self.cpu_s if self.cpu_s > 0 else 0.0

    @property
    def steady_rate(self) -> float | None:
        if self.first_record_s is None or self.wall_s - self.first_record_s <= 0:
            return None
        return self.records / (self.wall_s - self.first_record_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "ok": self.ok,
            "detail": self.detail,
            "records": self.records,
            "outputs": self.outputs,
            "wall_s": round(self.wall_s, 3),
            "first_record_s": None
            if self.first_record_s is None
            else round(self.first_record_s, 3),
            "records_per_s": round(self.rate, 1),
            "steady_records_per_s": None
            if self.steady_rate is None
            else round(self.steady_rate, 1),
            "cpu_s": round(self.cpu_s, 2),
            "records_per_cpu_s": round(self.cpu_rate, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "broker_cpu_s": None if self.broker_cpu_s is None else round(self.broker_cpu_s, 2),
            "other_cpu_s": None if self.other_cpu_s is None else round(self.other_cpu_s, 2),
            "returncodes": self.returncodes,
            "state_bytes": self.state_bytes,
        }


def mb(size: float | None) -> float | None:
    """Bytes as MB (2**20); ``None`` stays ``None``."""
    return None if size is None else size / 2**20


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``; ``-`` for ``None``."""
    return "-" if value is None else format(value, spec)


def summarize(results: dict[str, list[RunResult]]) -> dict[str, dict[str, Any]]:
    """Per job: medians (and min-max) over its runs; failed runs are excluded from the speed
    figures and counted."""
    out: dict[str, dict[str, Any]] = {}
    for name, runs in results.items():
        good = [r for r in runs if r.ok]
        entry: dict[str, Any] = {
            "engine": JOBS[name].engine,
            "workload": JOBS[name].workload,
            "processes": JOBS[name].processes,
            "runs": len(runs),
            "verified_runs": len(good),
            "failures": [r.detail for r in runs if not r.ok],
        }
        if good:
            rates = [r.rate for r in good]
            steady = [s for r in good if (s := r.steady_rate) is not None]
            firsts = [f for r in good if (f := r.first_record_s) is not None]
            brokers = [b for r in good if (b := r.broker_cpu_s) is not None]
            others = [o for r in good if (o := r.other_cpu_s) is not None]
            states = [b for r in good if (b := r.state_bytes) is not None]
            entry.update(
                records=good[0].records,
                records_per_s=statistics.median(rates),
                records_per_s_min=min(rates),
                records_per_s_max=max(rates),
                steady_records_per_s=statistics.median(steady) if steady else None,
                records_per_cpu_s=statistics.median(r.cpu_rate for r in good),
                wall_s=statistics.median(r.wall_s for r in good),
                first_record_s=statistics.median(firsts) if firsts else None,
                cpu_s=statistics.median(r.cpu_s for r in good),
                peak_rss_mb=statistics.median(r.peak_rss_mb for r in good),
                peak_rss_mb_max=max(r.peak_rss_mb for r in good),
                broker_cpu_s=statistics.median(brokers) if brokers else None,
                other_cpu_s=statistics.median(others) if others else None,
                state_bytes=int(statistics.median(states)) if states else None,
            )
        out[name] = entry
    return out


def _ratio(
    summary: dict[str, dict[str, Any]], a: str, b: str, key: str = "records_per_s"
) -> float | None:
    x, y = summary.get(a, {}).get(key), summary.get(b, {}).get(key)
    if x is None or y is None or y == 0:
        return None
    return float(x) / float(y)


def targets(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 7's targets, each with its measured value (None when a job did not run).

    ``value`` uses the headline records/s (whole process wall time) and decides ``met``;
    ``steady`` is the same ratio on steady-state records/s (after the first record), shown
    because a fixed ~3 s start-up (mostly the consumer-group join) weighs on short runs;
    ``per_cpu`` compares records per CPU second, which other load on the machine does not
    skew (for W2x2 it shows the cost of splitting the work, not a speed-up).
    """
    rss_w2 = summary.get("W2", {}).get("peak_rss_mb")
    rss_quix = summary.get("quix W2", {}).get("peak_rss_mb")
    steady = "steady_records_per_s"
    # (label, job, baseline, bound, judged on the steady-state rate instead of the headline)
    rows = [
        ("W2 records/s >= 4x Quix W2", "W2", "quix W2", 4.0, False),
        ("W3 records/s >= 4x Quix W3", "W3", "quix W3", 4.0, False),
        ("W3 >= 0.9x W2 (cost of exactly-once)", "W3", "W2", 0.9, False),
        ("W1 >= 0.5x floor", "W1", "floor", 0.5, False),
        # issue 15: two processes of one machine's group, steady state (start-up is not shared)
        ("W2 --processes 2 >= 1.6x 1 process (steady state)", "W2x2", "W2", 1.6, True),
    ]
    out = []
    for label, a, b, bound, on_steady in rows:
        value = _ratio(summary, a, b)
        judged = _ratio(summary, a, b, steady) if on_steady else value
        out.append(
            {
                "target": label,
                "value": value,
                "steady": _ratio(summary, a, b, steady),
                "per_cpu": _ratio(summary, a, b, "records_per_cpu_s"),
                "bound": bound,
                "op": ">=",
                "met": None if judged is None else judged >= bound,
            }
        )
    rss = None if rss_w2 is None or rss_quix is None else rss_w2 / rss_quix
    rss_w5 = summary.get("W5", {}).get("peak_rss_mb")
    out.append(
        {
            "target": f"W5 peak RSS MB < {W5_RSS_TARGET_MB:.0f} (global count, default cache)",
            "value": rss_w5,
            "steady": None,
            "per_cpu": None,
            "bound": W5_RSS_TARGET_MB,
            "op": "<",
            "met": None if rss_w5 is None else rss_w5 < W5_RSS_TARGET_MB,
        }
    )
    out.insert(
        4,
        {
            "target": "W2 peak RSS <= Quix W2 peak RSS (ratio)",
            "value": rss,
            "steady": None,
            "per_cpu": None,
            "bound": 1.0,
            "op": "<=",
            "met": None if rss is None else rss <= 1.0,
        },
    )
    return out


def _vs_peer(summary: dict[str, dict[str, Any]], name: str, peer: str) -> float | None:
    """records/s of kstream job ``name`` over the same workload's ``peer`` job (``quix W2``)."""
    other = f"{peer} {name}"
    if summary[name]["engine"] != "kstream" or other not in summary:
        return None
    return _ratio(summary, name, other)


def _k(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:,.1f}k"


def table_rows(summary: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The result table as text cells (header first), for the terminal and for Markdown."""
    rows = [
        [
            "job",
            "engine",
            "records/s",
            "min-max",
            "steady rec/s",
            "rec/CPU-s",
            "wall s",
            "1st rec s",
            "CPU s",
            "peak RSS MB",
            "broker CPU s",
            "other CPU s",
            "vs Quix",
            "vs Flink",
            "vs floor",
            "verified",
        ]
    ]
    for name, s in summary.items():
        vs_quix = _vs_peer(summary, name, "quix")
        vs_flink = _vs_peer(summary, name, "flink")
        same_data = s["engine"] != "floor" and s["workload"] in EVENT_WORKLOADS
        vs_floor = _ratio(summary, name, "floor") if same_data else None
        verified = f"{s['verified_runs']}/{s['runs']}"
        engine = s["engine"] + (f" x{s['processes']}" if s["processes"] > 1 else "")
        if "records_per_s" not in s:
            rows.append([name, engine, *["-"] * 13, verified])
            continue
        rows.append(
            [
                name,
                engine,
                _k(s["records_per_s"]),
                f"{_k(s['records_per_s_min'])}-{_k(s['records_per_s_max'])}",
                _k(s["steady_records_per_s"]),
                _k(s["records_per_cpu_s"]),
                f"{s['wall_s']:.1f}",
                fmt(s["first_record_s"], ".1f"),
                f"{s['cpu_s']:.1f}",
                f"{s['peak_rss_mb']:.0f}",
                fmt(s["broker_cpu_s"], ".1f"),
                fmt(s["other_cpu_s"], ".1f"),
                fmt(vs_quix, ".2f") + ("x" if vs_quix is not None else ""),
                fmt(vs_flink, ".2f") + ("x" if vs_flink is not None else ""),
                fmt(vs_floor, ".2f") + ("x" if vs_floor is not None else ""),
                verified,
            ]
        )
    return rows


def target_rows(summary: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = [["target", "headline", "steady-state", "per CPU-s", "met"]]
    for row in targets(summary):
        met = {True: "yes", False: "no", None: "n/a"}[row["met"]]
        rows.append(
            [
                row["target"],
                fmt(row["value"], ".2f"),
                fmt(row["steady"], ".2f"),
                fmt(row["per_cpu"], ".2f"),
                met,
            ]
        )
    return rows


def w5_section(summary: dict[str, dict[str, Any]], keys: int) -> dict[str, Any] | None:
    """W5's figures for results.json (``None`` when W5 did not run): ``keys``, its records/s
    beside W2's, its peak RSS (MB) against :data:`W5_RSS_TARGET_MB` and its state on disk."""
    w5 = summary.get("W5")
    if w5 is None:
        return None
    rss = w5.get("peak_rss_mb")
    return {
        "keys": keys,
        "records": w5.get("records"),
        "records_per_s": w5.get("records_per_s"),
        "w2_records_per_s": summary.get("W2", {}).get("records_per_s"),
        "vs_w2": _ratio(summary, "W5", "W2"),
        "peak_rss_mb": rss,
        "rss_target_mb": W5_RSS_TARGET_MB,
        "rss_met": None if rss is None else rss < W5_RSS_TARGET_MB,
        "state_bytes": w5.get("state_bytes"),
        "verified_runs": w5["verified_runs"],
        "runs": w5["runs"],
    }


def w5_rows(w5: dict[str, Any]) -> list[list[str]]:
    """The W5 table (header first) from :func:`w5_section`'s figures."""
    met = {True: "met", False: "not met", None: "-"}[w5["rss_met"]]
    records = w5["records"]
    return [
        ["job", "keys", "records", "records/s", "W2 records/s", "vs W2", "peak RSS MB",
         f"RSS < {w5['rss_target_mb']:.0f} MB", "state on disk MB", "verified"],
        ["W5", f"{w5['keys']:,}", "-" if records is None else f"{records:,}",
         _k(w5["records_per_s"]), _k(w5["w2_records_per_s"]),
         fmt(w5["vs_w2"], ".2f") + ("x" if w5["vs_w2"] is not None else ""),
         fmt(w5["peak_rss_mb"], ".0f"), met, fmt(mb(w5["state_bytes"]), ".1f"),
         f"{w5['verified_runs']}/{w5['runs']}"],
    ]  # fmt: skip


CAPTION = (
    "records/s = input records / process wall time (spawn to exit, nothing subtracted); "
    "steady = records / (wall - time to first record); rec/CPU-s = records / CPU seconds of "
    "the job's process(es); other CPU s = CPU used meanwhile by everything else on the machine"
)


def print_table(
    summary: dict[str, dict[str, Any]],
    records: int,
    runs: int,
    broker: str,
    console: Console,
    w5: dict[str, Any] | None = None,
) -> None:
    """The result table, W5's table (``w5``: :func:`w5_section`) and the targets on
    ``console``; ``broker`` says which broker."""
    table = Table(
        title=f"kstream benchmark: {records:,} events, median of {runs} run(s); broker: {broker}",
        caption=CAPTION,
    )
    header, *rows = table_rows(summary)
    for col in header:
        table.add_column(col, justify="left" if col in ("job", "engine", "verified") else "right")
    for row in rows:
        ok = row[-1].split("/")[0] == row[-1].split("/")[1]
        table.add_row(*row[:-1], f"[{'green' if ok else 'red'}]{row[-1]}[/]")
    console.print(table)
    if w5 is not None:
        t5 = Table(title=f"W5: global count per key, {w5['keys']:,} keys, one run")
        header, *rows = w5_rows(w5)
        for col in header:
            t5.add_column(col, justify="left" if col in ("job", "verified") else "right")
        for row in rows:
            t5.add_row(*row)
        console.print(t5)
    t = Table(title="targets")
    header, *rows = target_rows(summary)
    for col in header:
        t.add_column(col)
    for row in rows:
        colour = {"yes": "green", "no": "red"}.get(row[-1], "white")
        t.add_row(*row[:-1], f"[{colour}]{row[-1]}[/]")
    console.print(t)


def markdown(document: dict[str, Any]) -> str:
    """The tables of a results document as Markdown."""

    def md(rows: list[list[str]]) -> str:
        header, *body = rows
        right = [i for i, h in enumerate(header) if h not in ("job", "engine", "target")]
        align = ["---:" if i in right else "---" for i in range(len(header))]
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)

    summary = document["summary"]
    cfg = document["config"]
    head = (
        f"{cfg['records']:,} events, median of {cfg['runs']} run(s); broker: "
        f"{cfg.get('broker', 'unknown')}; {document['created']}, "
        f"git {document.get('git')}, {document['host']['cpus']} CPUs, "
        f"total {document.get('total_seconds')} s"
    )
    w5 = document.get("w5")
    w5_table = f"\n\n{md(w5_rows(w5))}" if w5 else ""
    return f"{head}\n\n{md(table_rows(summary))}{w5_table}\n\n{md(target_rows(summary))}\n"
