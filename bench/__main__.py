"""``python -m bench``: run the benchmark (see :mod:`bench.harness`)."""

import sys

from bench.harness import main

sys.exit(main())
