"""`python -m energymon_cli`, as the harness starts the services."""

import sys

from energymon_cli.main import main

sys.exit(main())
