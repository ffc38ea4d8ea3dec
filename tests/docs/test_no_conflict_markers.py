"""No merge-conflict markers in the tracked sources and docs (one reached docs/sql.md once)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.MULTILINE)
TEXT = (".md", ".py", ".sql", ".yaml", ".yml", ".toml", ".avsc", ".cfg", ".txt")


def _tracked() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [ROOT / name for name in out.splitlines() if name.endswith(TEXT)]


def test_no_merge_conflict_markers() -> None:
    files = _tracked()
    assert len(files) > 100  # the listing found the repository's files
    marked = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
        for path in files
        if path.is_file()
        for text in [path.read_text(encoding="utf-8", errors="replace")]
        for m in MARKER.finditer(text)
    ]
    assert not marked, f"merge-conflict markers at {marked}"
