"""The kill sweep in the suite: twenty SIGKILLs of a real ``syncd once`` per store."""

from __future__ import annotations

import os

import pytest

from syncd.harness import killsweep
from syncd.sync import killpoints
from tests.conftest import PG_URL


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_no_kill_point_duplicates_loses_or_leaves_unjournaled_or_unopenable(
    store: str, tmp_path
) -> None:
    if store == "postgresql":
        if not PG_URL:
            if os.environ.get("CI"):
                pytest.fail("SYNCD_TEST_DATABASE_URL is not set in CI")
            pytest.skip("SYNCD_TEST_DATABASE_URL not set: PostgreSQL kill sweep not run")
        store = PG_URL
    assert len(killsweep.POINTS) >= 20
    result = killsweep.sweep(store, workdir=tmp_path)
    dirty = [t for t in result.trials if not t.clean]
    assert not dirty, dirty
    totals = result.totals()
    assert totals["trials"] == totals["clean"] == len(killsweep.POINTS)
    assert totals["not killed"] == 0  # every point was reached: each trial is a kill


def test_a_kill_point_names_its_pass() -> None:
    assert killpoints.target("write.before_commit#3") == ("write.before_commit", 3)
    assert killpoints.target("pull.page") == ("pull.page", 1)
    assert killpoints.target("") is None
    assert {p.partition("#")[0] for p in killsweep.POINTS} <= set(killpoints.POINTS)
