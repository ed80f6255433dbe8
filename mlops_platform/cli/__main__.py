"""``python -m mlops_platform.cli``: the same as the ``mlops`` console script."""

from mlops_platform.cli import main

raise SystemExit(main())
