"""The committer: one chunk commits in the background while the next one is planned."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from syncd.sync.reconcile import LinkState


class Committer:
    """Commits one chunk in the background while the next one is planned and written.

    At most one commit is in flight, and each starts after the one before has ended,
    so chunks commit in order; an error in a commit stops the cycle at the next chunk.
    ``pending`` holds, by email, the people of the chunk still committing, so that the
    next chunk matches them as if their links were stored already.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
        self._inflight: Future[None] | None = None
        self.pending: dict[str, LinkState] = {}

    def wait(self) -> None:
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            inflight.result()
        self.pending = {}

    def submit(
        self, pending: dict[str, LinkState], commit: Callable[..., None], *args: Any
    ) -> None:
        self.wait()
        self.pending = pending
        self._inflight = self._pool.submit(commit, *args)

    def __enter__(self) -> Committer:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            if kind is None:
                self.wait()
            elif self._inflight is not None:
                self._inflight.exception()  # let it end; the first error is the one raised
        finally:
            self._pool.shutdown(wait=True)
