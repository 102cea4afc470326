"""`python -m tlcore`: the command line (`tlcore.cli.main`)."""
import sys

from .cli.commands import main

sys.exit(main())
