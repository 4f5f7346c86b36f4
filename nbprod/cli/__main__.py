"""``python -m nbprod.cli``: the ``nbprod`` command."""

import sys

from .app import main

sys.exit(main())
