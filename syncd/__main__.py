"""``python -m syncd``: the same as the ``syncd`` command."""

from syncd.cli.app import main

if __name__ == "__main__":
    main()
