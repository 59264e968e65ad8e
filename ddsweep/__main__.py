"""`python -m ddsweep ...`: the same as the `ddsweep` command."""
import sys

from ddsweep.pipeline.cli import main

sys.exit(main())
