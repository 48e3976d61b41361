"""`python -m supervisor` is the same as the `trading-supervisor` console script."""

from supervisor.cli import main

raise SystemExit(main())
