"""`python train.py --config X` is exactly `cxr fit --config X`."""

import sys

from cxr.cli import main

if __name__ == "__main__":
    sys.exit(main(["fit", *sys.argv[1:]]))
