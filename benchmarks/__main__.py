"""``python -m benchmarks [--quick] [--out DIR] [--only SECTION ...]``."""

import sys

from .run import main

sys.exit(main())
