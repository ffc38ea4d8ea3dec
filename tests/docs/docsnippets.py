"""Fenced code blocks of README.md and docs/**/*.md, with their file and line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")

#: Info strings of the same kind of block.
SHELL_LANGS = frozenset({"sh", "bash", "shell", "console"})
YAML_LANGS = frozenset({"yaml", "yml"})


@dataclass(frozen=True)
class Snippet:
    """One fenced block: ``file`` relative to the repository root, ``line`` of its first line."""

    file: str
    line: int
    lang: str
    text: str

    @property
    def kind(self) -> str:
        if self.lang in SHELL_LANGS:
            return "shell"
        if self.lang in YAML_LANGS:
            return "yaml"
        return self.lang or "untagged"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def __str__(self) -> str:  # pytest ids
        return f"{self.where}[{self.kind}]"


def doc_files() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def extract(path: Path) -> list[Snippet]:
    """The fenced blocks of one Markdown file; an unclosed fence is an error."""
    rel = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m.group("fence"), len(m.group("indent"))
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if end == len(lines):
            raise ValueError(f"{rel}:{i + 1}: fence {fence} never closed")
        body = [line[indent:] if line[:indent].isspace() else line for line in lines[i + 1 : end]]
        found.append(Snippet(rel, i + 2, m.group("lang").lower(), "\n".join(body) + "\n"))
        i = end + 1
    return found


def all_snippets() -> list[Snippet]:
    return [s for path in doc_files() for s in extract(path)]


_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def inline_code(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every inline code span outside fenced blocks."""
    spans: list[tuple[int, str]] = []
    in_fence: str | None = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = _FENCE.match(line)
        if m and (in_fence is None or line.strip().startswith(in_fence)):
            in_fence = None if in_fence else m.group("fence")
            continue
        if in_fence is None:
            spans.extend((n, span) for span in _INLINE.findall(line))
    return spans
