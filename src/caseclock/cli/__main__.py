"""`python -m caseclock.cli`: the same command line as the `caseclock` script."""

import sys

from caseclock.cli import main

sys.exit(main())
