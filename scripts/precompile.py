#!/usr/bin/env python3
"""Compile the CDK packages' bytecode for ``python -O`` once, at install time.

cdk.json runs the app with -O (skips jsii's per-call type checks); without
``.opt-1.pyc`` files every synth would recompile aws_cdk's large modules.
"""

from __future__ import annotations

import compileall
import sys
import sysconfig
from pathlib import Path

PACKAGES = ("aws_cdk", "cdk_nag", "constructs", "jsii")


def main() -> int:
    site = Path(sysconfig.get_paths()["purelib"])
    ok = all(compileall.compile_dir(site / name, quiet=1, optimize=1, workers=0) for name in PACKAGES)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
