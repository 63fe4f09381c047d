"""`python evaluate.py ARGS` is `cxr evaluate ARGS`."""

from __future__ import annotations

import sys

from cxr.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
