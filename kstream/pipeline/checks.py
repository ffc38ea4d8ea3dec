"""Checks of a pipeline file against what ``kstream run`` needs, beyond its shape.

* :func:`check_transaction_timeout` (part of every load): with ``guarantee: exactly_once`` the
  Kafka ``transaction.timeout.ms`` must outlive a checkpoint interval plus a restart, or the
  broker aborts a checkpoint's transaction while it is still open.
* :func:`check_imports` (``kstream validate`` and the start of ``kstream run``): every
  ``python: module:attr`` reference imports from the pipeline file's folder, names an existing
  attribute, and is of the right kind (a callable; for an aggregate a class with the aggregate
  methods, or a factory). Importing the module runs its top-level code, as ``run`` does; no
  function, class or factory is called.

Each problem is a :class:`~kstream.errors.ConfigIssue` with the file, line, key path and a fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from kstream.errors import ConfigError, ConfigIssue, ExpressionError
from kstream.expr.udf import load_python_callable
from kstream.pipeline.dataflow import unkeyed_sources
from kstream.pipeline.durations import format_duration_ms
from kstream.pipeline.spec import OperatorSpec, PipelineSpec, ProcessSpec
from kstream.pipeline.yamlnodes import Issues, Node, describe, parse_yaml

__all__ = [
    "AGGREGATE_METHODS",
    "DEFAULT_TRANSACTION_TIMEOUT_MS",
    "RESTART_ALLOWANCE_MS",
    "check_imports",
    "check_transaction_timeout",
    "pipeline_dir",
]

#: librdkafka's default ``transaction.timeout.ms`` (kstream's producers keep it).
DEFAULT_TRANSACTION_TIMEOUT_MS = 60_000
#: What a transaction must last beyond the checkpoint interval (a restart of the worker).
RESTART_ALLOWANCE_MS = 30_000
#: The methods a ``python:`` aggregate must have (``kstream.operators.window.node``).
AGGREGATE_METHODS = ("initialize", "add", "merge", "result")
TIMEOUT_KEY = "transaction.timeout.ms"
FUNCTION_KINDS = ("filter", "map", "flat_map", "key_by", "process")
PROCESS_HINT = (
    "a process function is a class with process(value, ctx) and optionally on_timer(timestamp, "
    "ctx) and open(ctx) (docs/process-functions.md)"
)
AGGREGATE_HINT = (
    "a python aggregate is a class (or a factory returning an object) with initialize(), "
    "add(acc, value), merge(acc1, acc2) and result(acc) (docs/pipeline.md)"
)


def pipeline_dir(path: str) -> Path:
    """The folder a pipeline's relative paths and ``python:`` modules are resolved from: the
    file's folder, or the working directory for a pipeline loaded from text (``<string>``)."""
    return Path(path).resolve().parent if path != "<string>" else Path.cwd()


def check_transaction_timeout(issues: Issues, root: Node, spec: PipelineSpec) -> None:
    """Record an issue when, with ``guarantee: exactly_once``, ``kafka: transaction.timeout.ms``
    (default 60000) is not an integer of ms or is below the checkpoint interval plus 30 s.

    The issue is placed on the setting, or on ``checkpoint.interval`` when the default applies.
    """
    if spec.checkpoint.guarantee != "exactly_once":
        return
    kafka = root.get("kafka")
    node = kafka.get(TIMEOUT_KEY) if kafka is not None else None
    needed = spec.checkpoint.interval_ms + RESTART_ALLOWANCE_MS
    fix = f"set kafka: {{{TIMEOUT_KEY}: {needed}}} or more"
    if node is None:
        if needed > DEFAULT_TRANSACTION_TIMEOUT_MS:
            where = _at(root, "checkpoint", "interval")
            interval = format_duration_ms(spec.checkpoint.interval_ms)
            message = (
                f"with exactly_once a checkpoint's transaction must outlive the interval plus "
                f"{RESTART_ALLOWANCE_MS // 1000}s; the default {TIMEOUT_KEY} "
                f"({DEFAULT_TRANSACTION_TIMEOUT_MS}) is too small for interval {interval}"
            )
            issues.add(where, message, f"{fix}, or a shorter interval")
        return
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        issues.add(node, f"expected an integer of ms, got {describe(value)}", fix)
        return
    if int(value) < needed:
        interval = format_duration_ms(spec.checkpoint.interval_ms)
        message = (
            f"{value} is too small for checkpoint interval {interval}: with exactly_once a "
            f"transaction must outlive the interval plus {RESTART_ALLOWANCE_MS // 1000}s"
        )
        issues.add(node, message, f"{fix}, or a shorter checkpoint interval")


def check_process_keyed(issues: Issues, root: Node, spec: PipelineSpec) -> None:
    """Record an issue for each ``process`` node that some source reaches without a
    ``key_by`` on the way: a process function keeps its state and timers per key, so its input
    must be keyed (Flink: ``keyBy(...).process(...)``). ``spec`` must be wired."""
    operators = root.get("operators")
    items = operators.items() if operators is not None else []
    producers = {op.id: op for op in spec.operators}
    for op, item in zip(spec.operators, items, strict=False):
        if isinstance(op, ProcessSpec) and _reaches_unkeyed(op, producers):
            issues.add(
                item.get("process") or item,
                f"process '{op.id}' is not keyed: its input comes from a source without a "
                "key_by on the way",
                "add '- key_by: <expression>' before it (a process function keeps its state "
                "and timers per key)",
            )


def _reaches_unkeyed(op: ProcessSpec, producers: Mapping[str, OperatorSpec]) -> bool:
    """Whether a path from a source reaches ``op`` without passing a ``key_by``."""
    return bool(unkeyed_sources(op.inputs, producers))


def _at(root: Node, *keys: str) -> Node:
    """The deepest existing node along ``keys`` (``root`` when the first is absent)."""
    node = root
    for key in keys:
        child = node.get(key)
        if child is None:
            break
        node = child
    return node


def check_imports(spec: PipelineSpec) -> None:
    """Import every ``python:`` reference of the pipeline file ``spec.path`` and check it.

    Functions (``filter``, ``map``, ``flat_map``, ``key_by``) must be callable; an aggregate
    must be a class with :data:`AGGREGATE_METHODS` or another callable (a factory, not called
    here). Modules are imported from :func:`pipeline_dir`, as ``kstream run`` does. A pipeline
    loaded from text (``<string>``, or a name that is no file) has no file to point into and is
    not checked.

    Raises:
        ConfigError: every reference that cannot be imported or has the wrong kind, with the
            file, line and key path of its ``python:`` value; or the file no longer loads.
    """
    if spec.path == "<string>" or not Path(spec.path).is_file():
        return
    if spec.path.lower().endswith(".sql"):  # a Flink SQL job references no Python code
        return
    try:
        text = Path(spec.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        hint = "check the path and that the file is UTF-8 text"
        issue = ConfigIssue(spec.path, 0, "", f"cannot read the file: {exc}", hint)
        raise ConfigError([issue]) from exc
    issues = Issues(spec.path)
    folder = str(pipeline_dir(spec.path))
    for node, aggregate in _python_refs(parse_yaml(text, spec.path)):
        process = node.path.endswith(".process.python")
        _check_ref(issues, node, folder, aggregate=aggregate, process=process)
    issues.raise_if_any()


def _python_refs(root: Node) -> Iterator[tuple[Node, bool]]:
    """``(python: value node, is an aggregate)`` for every reference under ``operators``."""
    operators = root.get("operators")
    for item in operators.items() if operators is not None else []:
        for kind in FUNCTION_KINDS:
            ref = _python_of(item.get(kind))
            if ref is not None:
                yield ref, False
        window = item.get("window")
        aggregate = window.get("aggregate") if window is not None else None
        for _, entry in aggregate.entries() if aggregate is not None else []:
            ref = _python_of(entry)
            if ref is not None:
                yield ref, True


def _python_of(node: Node | None) -> Node | None:
    child = node.get("python") if node is not None else None
    return child if child is not None and isinstance(child.value, str) else None


def _check_ref(
    issues: Issues, node: Node, folder: str, *, aggregate: bool, process: bool = False
) -> None:
    ref = str(node.value).strip()
    try:
        target = load_python_callable(ref, search_paths=[folder])
    except ExpressionError as exc:
        message = str(exc).removeprefix("python: ")
        issues.add(node, message, _import_hint(message, ref, folder))
        return
    if process and isinstance(target, type) and not callable(getattr(target, "process", None)):
        issues.add(node, f"process function {ref} has no method process()", PROCESS_HINT)
    if aggregate and isinstance(target, type):
        missing = [m for m in AGGREGATE_METHODS if not callable(getattr(target, m, None))]
        if missing:
            names = ", ".join(f"{m}()" for m in missing)
            issues.add(node, f"aggregate class {ref} has no method {names}", AGGREGATE_HINT)


def _import_hint(message: str, ref: str, folder: str) -> str:
    """How to fix what :func:`~kstream.expr.udf.load_python_callable` reported."""
    module, attr = ref.split(":", 1) if ":" in ref else (ref, "")
    if "not found" in message:
        file = module.replace(".", "/") + ".py"
        return f"put {file} in {folder} (the pipeline's folder), or install the module"
    if "has no attribute" in message:
        return f"define {attr} in module {module}, or fix the name after ':'"
    if "not callable" in message:
        return f"name a function or class defined in {module}"
    return f"fix the error raised while importing {module} (validation only imports it)"
