"""The conformance cases: the SQL scripts of ``tests/conformance/queries/``, found and rendered.

A case is one file ``NN-short-name.sql``: a complete Flink SQL script with the placeholders
``${bootstrap}``, ``${result_topic}`` and ``${result2_topic}`` (the last only in a case with a
second sink, ``result2``). Each sink's kind, ``append`` (connector ``kafka``), ``keyed`` (connector
``kafka`` with ``'key.fields'``: its keys are compared too) or ``upsert`` (connector
``upsert-kafka``), decides how its topic is compared (:mod:`tests.conformance.compare`).

A case may have a reference script of its own, ``NN-short-name.flink.sql``, that Flink runs
instead: only where Flink cannot run the construct on Kafka at all and an equivalent query
gives Flink's result (a lookup join: Flink looks up only in external systems such as JDBC, and
over a table that does not change the regular join is the same join). The file says why.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

QUERIES = Path(__file__).resolve().parent / "queries"
#: The sink tables a case may write, by the placeholder of their topic.
SINKS = {"result": "result_topic", "result2": "result2_topic"}

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


class CaseError(ValueError):
    """A query file is malformed (no ``result`` sink, an unknown placeholder)."""


@dataclass(frozen=True)
class Case:
    """One query file.

    Attributes:
        name: the file name without ``.sql`` (``01-project-filter``).
        path: the file.
        sinks: sink table name -> ``"append"``, ``"keyed"`` or ``"upsert"``, ``result`` first.
        avro_sinks: the sinks whose ``'format'`` is ``'avro'``.
    """

    name: str
    path: Path
    sinks: dict[str, str]
    #: the sinks written in the ``avro`` format (compared as Avro: :mod:`...compare`)
    avro_sinks: frozenset[str] = frozenset()

    def topics(self, engine: str, run_id: str) -> dict[str, str]:
        """Sink table -> its topic for ``engine`` (``flink`` or ``kstream``) in run ``run_id``:
        ``conformance-<run_id>-<case>-<engine>-<sink>``."""
        return {sink: f"conformance-{run_id}-{self.name}-{engine}-{sink}" for sink in self.sinks}

    def render(self, bootstrap: str, topics: dict[str, str], engine: str = "kstream") -> str:
        """The script (for ``engine`` ``flink``: its ``.flink.sql`` reference when it has one)
        with its placeholders substituted.

        Raises:
            CaseError: a placeholder other than the bootstrap and the sinks' topics.
        """
        values = {"bootstrap": bootstrap}
        values.update({SINKS[sink]: topic for sink, topic in topics.items()})

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) not in values:
                raise CaseError(f"{self.path.name}: unknown placeholder ${{{match.group(1)}}}")
            return values[match.group(1)]

        reference = self.path.with_suffix(".flink.sql")
        path = reference if engine == "flink" and reference.exists() else self.path
        return _PLACEHOLDER.sub(substitute, path.read_text())


def sink_kinds(script: str) -> dict[str, str]:
    """Sink table -> ``"append"`` / ``"keyed"`` / ``"upsert"`` for each of :data:`SINKS` the
    script creates, from the ``'connector'`` and ``'key.fields'`` options of its ``CREATE
    TABLE`` (up to the statement's ``;``)."""
    kinds: dict[str, str] = {}
    for sink, ddl in _sink_ddls(script).items():
        connector = re.search(r"'connector'\s*=\s*'([\w-]+)'", ddl)
        if connector and connector.group(1) == "upsert-kafka":
            kinds[sink] = "upsert"
        else:
            kinds[sink] = "keyed" if re.search(r"'key\.fields'\s*=", ddl) else "append"
    return kinds


def avro_sinks(script: str) -> frozenset[str]:
    """The sinks of :data:`SINKS` the script creates with ``'format' = 'avro'``."""
    found = re.compile(r"'(?:value\.)?format'\s*=\s*'avro'")
    return frozenset(sink for sink, ddl in _sink_ddls(script).items() if found.search(ddl))


def _sink_ddls(script: str) -> dict[str, str]:
    """Sink table -> the text of its ``CREATE TABLE`` after the name, up to the ``;``."""
    ddls: dict[str, str] = {}
    for sink in SINKS:
        created = re.search(rf"CREATE\s+TABLE\s+`?{sink}`?\s*\(", script, re.I)
        if created is not None:
            ddls[sink] = script[created.end() : script.find(";", created.end())]
    return ddls


def load_case(path: Path) -> Case:
    """The case of one query file.

    Raises:
        CaseError: it creates no ``result`` table.
    """
    script = path.read_text()
    sinks = sink_kinds(script)
    if "result" not in sinks:
        raise CaseError(f"{path.name}: no CREATE TABLE result")
    return Case(path.stem, path, sinks, avro_sinks(script))


def discover(only: str | None = None, folder: Path = QUERIES) -> list[Case]:
    """The cases of ``folder`` in file name order; with ``only``, those whose name contains it
    or matches it as a glob (``--only join``, ``--only '1?-*'``)."""
    paths = [p for p in sorted(folder.glob("*.sql")) if not p.name.endswith(".flink.sql")]
    cases = [load_case(path) for path in paths]
    if only:
        cases = [c for c in cases if only in c.name or fnmatch.fnmatch(c.name, only)]
    return cases
