"""The driver example of docs/process-functions.md runs, with the doc's counting.py module
(tests/docs only compiles it: it needs that module importable)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "process-functions.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_driver_example_of_the_doc_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = python_blocks()
    (module,) = [b for b in blocks if b.startswith("# counting.py")]
    (example,) = [b for b in blocks if "def test_a_quiet_origin_fires_its_timer" in b]
    (tmp_path / "counting.py").write_text(module, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # a pipeline loaded from text imports from the working dir
    monkeypatch.delitem(sys.modules, "counting", raising=False)
    namespace: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(example, str(DOC), "exec"), namespace)
    test = namespace["test_a_quiet_origin_fires_its_timer"]
    assert callable(test)
    test()
    sys.modules.pop("counting", None)
