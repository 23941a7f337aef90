"""The sync core: one cycle's read, merge, write and commit, and its steps."""
