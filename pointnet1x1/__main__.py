"""``python -m pointnet1x1`` (and ``torchrun -m pointnet1x1``) runs the CLI."""

import sys

from pointnet1x1.cli import main

sys.exit(main())
