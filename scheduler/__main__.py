"""``python -m scheduler`` is ``neuron-sim``."""

import sys

from scheduler.cli import main

sys.exit(main())
