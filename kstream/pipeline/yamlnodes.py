"""Position-tracking access to a ruamel.yaml round-trip document, and issue collection.

:func:`parse_yaml` turns YAML text into a :class:`Node` tree view (value, 1-based line, key
path). The ``read_*`` helpers check one value and record a :class:`ConfigIssue` in an
:class:`Issues` collector instead of raising, so that a loader can report every problem at once.
Expressions are compiled with :func:`kstream.expr.compiler.compile_expression` when that module
exists. This module knows nothing about pipelines; the schema lives in :mod:`kstream.pipeline.load`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from kstream.errors import ConfigError, ConfigIssue, ExpressionError
from kstream.pipeline.durations import (
    ACCEPTED,
    parse_duration_ms,
    parse_size_bytes,
    suggest_duration,
)

DURATION_HINT = f"write {ACCEPTED}"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9._-]+$")
NAME_HINT = "use only letters, digits, '.', '_' and '-'"
PYTHON_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
PYTHON_HINT = "write module:function, e.g. my_udfs:is_valid (the module must be importable)"
EXPR_HINT = "expressions are Python-like, e.g. dep_delay / 60, origin == 'JFK', x is not None"


@dataclass(frozen=True)
class Node:
    """A YAML value with where it was written.

    Attributes:
        value: the ruamel value (``CommentedMap``, ``CommentedSeq``, a scalar or ``None``).
        line: 1-based line of the key that holds the value (of the item, in a list).
        path: key path such as ``operators[2].window.size`` ("" for the document root).
    """

    value: Any
    line: int
    path: str

    @property
    def is_map(self) -> bool:
        """Whether the value is a mapping."""
        return isinstance(self.value, dict)

    @property
    def is_seq(self) -> bool:
        """Whether the value is a list."""
        return isinstance(self.value, list)

    def entries(self) -> list[tuple[str, Node]]:
        """The (key, child) pairs of a mapping in document order; ``[]`` for non-mappings."""
        if not self.is_map:
            return []
        return [(str(key), self._child(key)) for key in self.value]

    def get(self, key: str) -> Node | None:
        """The child under ``key`` of a mapping, or None when absent (or not a mapping)."""
        if not self.is_map:
            return None
        for raw in self.value:
            if str(raw) == key:
                return self._child(raw)
        return None

    def items(self) -> list[Node]:
        """The children of a list, in order; ``[]`` for non-lists."""
        if not self.is_seq:
            return []
        return [
            Node(item, _line(self.value, "item", i, self.line), f"{self.path}[{i}]")
            for i, item in enumerate(self.value)
        ]

    def _child(self, key: Any) -> Node:
        path = f"{self.path}.{key}" if self.path else str(key)
        return Node(self.value[key], _line(self.value, "key", key, self.line), path)


def _line(container: Any, kind: str, where: Any, default: int) -> int:
    """1-based line of a mapping key / list item, from ruamel's line-column data."""
    lc = getattr(container, "lc", None)
    if lc is None:
        return default
    try:
        row = lc.key(where)[0] if kind == "key" else lc.item(where)[0]
    except (KeyError, IndexError, TypeError, AttributeError):
        return default
    return int(row) + 1


@dataclass
class Issues:
    """Collects :class:`ConfigIssue` for one file."""

    file: str
    items: list[ConfigIssue] = field(default_factory=list)

    def add(self, node: Node, message: str, hint: str = "", line: int | None = None) -> None:
        """Record an issue at ``node`` (its line, unless ``line`` is given)."""
        where = node.line if line is None else line
        self.items.append(ConfigIssue(self.file, where, node.path, message, hint))

    def raise_if_any(self) -> None:
        """Raise one :class:`ConfigError` with every issue (sorted by line), if there are any.

        Raises:
            ConfigError: when at least one issue was recorded.
        """
        if self.items:
            raise ConfigError(sorted(self.items, key=lambda i: i.line))


def parse_yaml(text: str, file: str) -> Node:
    """Parse ``text`` with the ruamel round-trip loader.

    Returns:
        The document root as a :class:`Node` (value ``None`` for an empty document).

    Raises:
        ConfigError: on invalid YAML syntax, duplicate keys or several documents, with the
            line of the problem.
    """
    try:
        value = YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise ConfigError([_syntax_issue(exc, file)]) from exc
    lc = getattr(value, "lc", None)
    line = int(lc.line) + 1 if lc is not None and lc.line is not None else 1
    return Node(value, line, "")


def _syntax_issue(exc: YAMLError, file: str) -> ConfigIssue:
    if not isinstance(exc, MarkedYAMLError):
        return ConfigIssue(file, 0, "", f"invalid YAML: {exc}", "fix the YAML syntax")
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 0
    problem = exc.problem or "syntax error"
    if exc.context:
        problem = f"{problem} ({exc.context})"
    if "duplicate key" in problem:
        hint = "each key may appear only once in a mapping; remove or rename one"
    else:
        hint = "check the indentation, colons, quotes and brackets on this line and the one above"
    return ConfigIssue(file, line, "", f"invalid YAML: {problem}", hint)


def describe(value: object) -> str:
    """A short English name for the YAML type of ``value`` (``a string``, ``a list``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def suggest(word: str, choices: Sequence[str]) -> str:
    """A hint for a misspelled ``word``: ``did you mean 'x'?`` or the list of valid choices."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"expected one of: {', '.join(choices)}"


def check_keys(
    issues: Issues, node: Node, allowed: Sequence[str], required: Sequence[str] = ()
) -> bool:
    """Report unknown keys (with a suggestion) and missing required keys of a mapping.

    Returns:
        False when ``node`` is not a mapping (an issue is recorded), True otherwise.
    """
    if not expect_map(issues, node):
        return False
    for key, child in node.entries():
        if key not in allowed:
            issues.add(child, f"unknown key '{key}'", suggest(key, allowed))
    for key in required:
        if node.get(key) is None:
            where = f"'{node.path}'" if node.path else "the top level"
            issues.add(node, f"missing required key '{key}'", f"add '{key}:' under {where}")
    return True


def expect_map(issues: Issues, node: Node, hint: str = "") -> bool:
    """Record an issue unless ``node`` is a mapping; returns whether it is one."""
    if node.is_map:
        return True
    issues.add(
        node, f"expected a mapping, got {describe(node.value)}", hint or "write key: value pairs"
    )
    return False


def expect_seq(issues: Issues, node: Node, hint: str = "") -> bool:
    """Record an issue unless ``node`` is a list; returns whether it is one."""
    if node.is_seq:
        return True
    issues.add(
        node, f"expected a list, got {describe(node.value)}", hint or "write a list of '- ' items"
    )
    return False


def read_str(
    issues: Issues, node: Node | None, default: str | None = None, *, name: bool = False
) -> str | None:
    """A non-empty string value (``name=True``: also matching ``[a-zA-Z0-9._-]+``).

    Returns ``default`` when ``node`` is None or invalid (an issue is then recorded).
    """
    if node is None:
        return default
    value = node.value
    if not isinstance(value, str) or not value.strip():
        issues.add(
            node, f"expected a non-empty string, got {describe(value)}", "write a text value"
        )
        return default
    if name and not NAME_PATTERN.match(value):
        issues.add(node, f"invalid name {value!r}", NAME_HINT)
        return default
    return str(value)


def read_enum(issues: Issues, node: Node | None, choices: Sequence[str], default: str) -> str:
    """One of ``choices``; ``default`` when absent or invalid (an issue is then recorded)."""
    if node is None:
        return default
    value = node.value
    if isinstance(value, str) and value in choices:
        return str(value)
    shown = repr(value) if isinstance(value, str) else describe(value)
    issues.add(node, f"invalid value {shown}", suggest(str(value), choices))
    return default


def read_duration(
    issues: Issues, node: Node | None, default: int | None, *, minimum: int | None = 0
) -> int | None:
    """A duration in ms (``10s``, ``5m`` or an int of ms), at least ``minimum`` when given.

    Returns ``default`` when absent or invalid (an issue is then recorded; ``5 minutes`` is
    told to write ``5m``, see :func:`~kstream.pipeline.durations.suggest_duration`).
    """
    if node is None:
        return default
    try:
        ms = parse_duration_ms(node.value)
    except ValueError:
        fix = suggest_duration(node.value)
        hint = f"write {fix} (a duration is {ACCEPTED})" if fix else DURATION_HINT
        issues.add(node, f"invalid duration {describe(node.value)}", hint)
        return default
    if minimum is not None and ms < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}ms"
        issues.add(node, f"duration must be {what}, got {node.value}", DURATION_HINT)
        return default
    return ms


SIZE_HINT = "write a size like 64MB, 512KiB or 1GB (or an integer of bytes)"


def read_size(issues: Issues, node: Node | None, default: int) -> int:
    """A size in bytes (``64MB``, ``512KiB``, ``1GB``, or a positive int of bytes; parsed by
    pydantic's ``ByteSize``: MB = 1000**2, MiB = 1024**2); ``default`` when absent or
    invalid (an issue is then recorded)."""
    if node is None:
        return default
    value = node.value
    try:
        size = parse_size_bytes(value)
    except ValueError:
        issues.add(node, f"invalid size {describe(value)}", SIZE_HINT)
        return default
    if size <= 0 or isinstance(value, bool):
        issues.add(node, f"size must be positive, got {describe(value)}", SIZE_HINT)
        return default
    return size


def read_positive_int(issues: Issues, node: Node | None, default: int | None) -> int | None:
    """A positive integer; ``default`` when absent or invalid (an issue is then recorded)."""
    if node is None:
        return default
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return int(value)
    issues.add(node, f"expected a positive integer, got {describe(value)}", "write e.g. 4")
    return default


def read_expression(issues: Issues, node: Node) -> str | None:
    """An expression string, compiled to check it (numbers are taken as their text).

    Returns None when invalid (an issue is then recorded).
    """
    value = node.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        issues.add(node, f"expected an expression string, got {describe(value)}", EXPR_HINT)
        return None
    try:
        from kstream.expr.compiler import compile_expression
    except ImportError:  # the expression compiler is optional at load time
        return str(value)
    try:
        compile_expression(str(value))  # the issue names the key path, not the message
    except ExpressionError as exc:
        issues.add(node, f"invalid {exc}", EXPR_HINT)
        return None
    return str(value)


def read_python_ref(issues: Issues, node: Node) -> str | None:
    """A ``module:function`` reference (not imported here); None when invalid."""
    value = node.value
    if isinstance(value, str) and PYTHON_REF.match(value):
        return str(value)
    issues.add(node, f"expected module:function, got {describe(value)}", PYTHON_HINT)
    return None
