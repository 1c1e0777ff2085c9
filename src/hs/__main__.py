"""``python -m hs`` is the ``hs`` command."""

import sys

from hs.cli import main

sys.exit(main())
