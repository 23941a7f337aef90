"""``python -m connectors.hubspot.emulator``: the emulator in its own process."""

import sys

from connectors.hubspot.emulator.server import main

sys.exit(main())
