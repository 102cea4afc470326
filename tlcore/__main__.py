"""`python -m tlcore`: the command line (`tlcore.cli.main`)."""
import sys

from .cli import main

sys.exit(main())
