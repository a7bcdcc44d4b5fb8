"""`python -m kling_i2v.cli`: the same as the `kling-i2v` command."""

import sys

from . import main

sys.exit(main())
