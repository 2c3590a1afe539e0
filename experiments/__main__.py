"""`python -m experiments ...`: the command line, as the installed `init-loss-lab`."""

import sys

from experiments.cli import entry

sys.exit(entry())
