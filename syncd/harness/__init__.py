"""What runs syncd against the emulators: the demo, its sandbox, the benchmark, the kill sweep."""
