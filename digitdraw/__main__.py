"""``python -m digitdraw``: the command line (``digitdraw.cli``)."""

import sys

from digitdraw.cli import main

if __name__ == "__main__":
    sys.exit(main())
