"""``python -m gumbel_np``: see :mod:`gumbel_np._cli`."""

import sys

from ._cli import main

sys.exit(main())
