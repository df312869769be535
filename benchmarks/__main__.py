"""``python -m benchmarks``: run the suite and print the table."""

from .cli import main

raise SystemExit(main())
