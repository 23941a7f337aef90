"""The batch splitter: only refused inputs are lost, and the extra calls stay bounded."""

from __future__ import annotations

import math

import pytest

from syncd.sync.split import Answered, Refused, Splitter


class Refusal(Exception):
    pass


def _sender(bad: set[int], calls: list[list[int]]):
    def send(batch: list[int]) -> list[int]:
        calls.append(batch)
        wrong = sorted(bad & set(batch))
        if wrong:
            raise Refusal(f"input {wrong[0]} is invalid")
        return batch

    return send


@pytest.mark.parametrize("size", [1, 2, 7, 100, 200])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_bad_input_costs_at_most_two_calls_per_level(size: int, where: str) -> None:
    bad = {"first": 0, "middle": size // 2, "last": size - 1}[where]
    calls: list[list[int]] = []
    splitter = Splitter()
    results = splitter.send(list(range(size)), _sender({bad}, calls), Refusal)
    landed = [i for r in results if isinstance(r, Answered) for i in r.answer]
    refused = [r for r in results if isinstance(r, Refused)]
    assert landed == [i for i in range(size) if i != bad]
    assert [r.item for r in refused] == [bad]
    assert str(refused[0].error) == f"input {bad} is invalid"
    assert splitter.extra_calls == len(calls) - 1
    assert splitter.extra_calls <= 2 * math.ceil(math.log2(size)) if size > 1 else True


def test_every_input_bad_costs_at_most_two_n_calls() -> None:
    calls: list[list[int]] = []
    splitter = Splitter()
    results = splitter.send(list(range(100)), _sender(set(range(100)), calls), Refusal)
    assert all(isinstance(r, Refused) for r in results) and len(results) == 100
    assert len(calls) == 199


def test_a_refusal_not_about_inputs_refuses_the_batch_without_splitting() -> None:
    calls: list[list[int]] = []
    splitter = Splitter()
    results = splitter.send(list(range(10)), _sender({3}, calls), Refusal, lambda _e, _b: False)
    assert [r.item for r in results if isinstance(r, Refused)] == list(range(10))
    assert len(calls) == 1 and splitter.extra_calls == 0


def test_other_errors_propagate_and_empty_batches_cost_nothing() -> None:
    def broken(batch: list[int]) -> list[int]:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        Splitter().send([1, 2], broken, Refusal)
    assert Splitter().send([], broken, Refusal) == []
