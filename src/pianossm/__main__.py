"""``python -m pianossm``."""

import sys

from pianossm.cli import main

sys.exit(main())
