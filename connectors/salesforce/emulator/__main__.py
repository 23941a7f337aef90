"""``python -m connectors.salesforce.emulator``: the emulator in its own process."""

from connectors.salesforce.emulator.server import main

main()
