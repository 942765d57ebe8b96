"""``python -m qdiff``: the same as the ``qdiff`` command."""

import sys

from .cli import main

sys.exit(main())
