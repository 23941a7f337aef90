"""Batches refused as a whole, split until each refused record stands alone.

Some batch endpoints refuse a whole batch for one bad input (HubSpot's batch update and
upsert answer 400 or 409 and write nothing; a Salesforce sObject Collection that cannot
be read answers 400). ``Splitter.send`` then sends the two halves, and halves of a
refused half again, until every refused input is alone: the others land in the same
call sequence, and each refused one keeps the system's own error.

Cost: one bad input in a batch of n costs 2 x ceil(log2 n) calls more than the batch
itself (both halves at every level down to the bad input); k bad inputs cost at most
k times that, and never more than 2n - 2 in all. ``Splitter.extra_calls`` counts them
for the benchmark and the metrics.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Answered(Generic[T, R]):
    """A batch (the whole or a part) the system answered; ``answer`` is its reply."""

    items: list[T]
    answer: R


@dataclass(frozen=True, slots=True)
class Refused(Generic[T]):
    """One input the system refused on its own, with the system's error."""

    item: T
    error: Exception


class Splitter:
    """Sends batches, splitting those refused as a whole; counts the extra calls."""

    def __init__(self) -> None:
        self.extra_calls = 0
        """Calls made beyond one per batch, to find the refused inputs."""

    def send(
        self,
        items: Sequence[T],
        send: Callable[[list[T]], R],
        refusal: type[Exception] | tuple[type[Exception], ...],
        splits: Callable[[Exception, list[T]], bool] = lambda _error, _batch: True,
    ) -> list[Answered[T, R] | Refused[T]]:
        """``send(items)``; when it raises ``refusal``, send each half the same way.

        ``splits(error, batch)`` says whether a refusal may be about some inputs only
        (not about the request, or about something every input carries); when it says
        no, every input of the batch is refused with that error, as an input alone is.
        Answers come in the order of the inputs. Any other error propagates (what was
        answered before it has landed).
        """
        results: list[Answered[T, R] | Refused[T]] = []
        pending: deque[list[T]] = deque([list(items)] if items else [])
        first = True
        while pending:
            batch = pending.popleft()
            if not first:
                self.extra_calls += 1
            first = False
            try:
                results.append(Answered(batch, send(batch)))
            except refusal as exc:
                if len(batch) == 1 or not splits(exc, batch):
                    results.extend(Refused(item, exc) for item in batch)
                else:
                    middle = len(batch) // 2
                    pending.extendleft([batch[middle:], batch[:middle]])
        return results
