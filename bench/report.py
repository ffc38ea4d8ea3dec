"""Print the tables of a results file as Markdown: ``python -m bench.report [results.json]``
(used to update docs/performance.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.harness import ROOT, markdown


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else ROOT / "bench" / "results.json"
    print(markdown(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
