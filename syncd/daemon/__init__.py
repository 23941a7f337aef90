"""The daemon's parts: the scheduler, the lease, the API budget and pacing, the metrics."""
