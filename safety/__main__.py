"""Command line of the safety engine: `python -m safety check|explain|train` (see `--help`)."""

from safety.cli import main

raise SystemExit(main())
