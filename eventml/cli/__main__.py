"""``python -m eventml.cli``: the ``eventml`` command."""

import sys

from eventml.cli import main

sys.exit(main())
