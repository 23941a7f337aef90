"""`syncd bench` stays runnable, and syncd stays batch-first: its API calls stay within
1.1x the floor of pages and batches at the maximum sizes. No speed is asserted here:
speed is the benchmark's to measure, not a test's; the figures about it are checked for
being present and consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def bench(*options: str) -> dict[str, Any]:
    """One ``syncd bench ... --json`` run in a fresh process: its figures."""
    answer = subprocess.run(
        [
            sys.executable,
            "-c",
            "from syncd.cli.app import main; main()",
            "bench",
            *options,
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    result: dict[str, Any] = json.loads(answer.stdout.strip().splitlines()[-1])
    return result


def test_the_benchmark_runs_and_stays_near_the_call_floor() -> None:
    result = bench("--records", "4000", "--unthrottled")
    assert result["throttled"] is False and result["limits"]["hubspot"]["rate"] is None
    assert result["rate_limit_bound_s"] == {"hubspot": 0, "salesforce": 0, "max": 0}
    assert result["objects"] == {"person": 4000, "company": 400, "deal": 400}
    assert result["records"] == 4800 and result["records_per_s"] > 0
    assert 0 < result["peak_rss_mb"] < 1024
    after = list(result["peak_rss_mb_after"].values())  # a peak so far: it never falls
    assert after == sorted(after) and after[-1] <= result["peak_rss_mb"]
    assert list(result["peak_rss_mb_after"]) == [
        "backfill",
        "steady_state",
        "lookback",
        "idle",
        "activities",
        "refused_batch",
    ]
    # syncd report ran on the benchmark's store and counted what the backfill synced
    report = result["report"]
    assert report["seconds"] > 0 and report["people_in_funnel"] > 0
    assert report["deals_won"] > 0
    assert report["quality_handoffs"] > 0  # the seeded MQLs, in the lead-quality section
    backfill = result["backfill"]
    written = backfill["written"]
    # HubSpot records are created in Salesforce; nothing but their ids goes back
    assert written["person"] == {"hubspot": 0, "salesforce": 4000}
    assert written["company"] == {"hubspot": 0, "salesforce": 400}
    # deals: created in Salesforce; the people of closed deals move in both systems, but
    # a lead is never given a converted status (a won deal's people who are still leads)
    closing = written["deal"]["salesforce"] - 400
    assert 0 < closing < written["deal"]["hubspot"] < 400
    assert backfill["rejected"] == {"hubspot": 0, "salesforce": 0}
    for system in ("hubspot", "salesforce"):
        calls, floor = backfill["api_calls"][system], backfill["api_calls_floor"][system]
        assert floor <= calls <= 1.1 * floor, (system, calls, floor)
    # 1% edited on each side: a handful of calls, not one per record
    steady = result["steady_state"]
    assert steady["records"] == 80
    for system in ("hubspot", "salesforce"):
        assert steady["api_calls"][system] <= steady["api_calls_floor"][system] + 2
    # nothing refused, nothing split; then one bad lead in a batch of 100 costs at most 14
    assert result["split_calls"] == {"hubspot": 0, "salesforce": 0}
    refused = result["refused_batch"]
    assert refused["records"] == 100 and refused["rejected"] == {"hubspot": 1, "salesforce": 0}
    assert 0 < refused["split_calls"]["hubspot"] <= 14
    # The lookback reads everything a second time and settles it all: nothing written.
    activities = result["activities"]
    # one logged call on each of the 4,000 people: all read, at the page floor
    assert activities["logged"] == 4000 and activities["read"] == 4000
    assert activities["salesforce_calls"] == activities["calls_floor"] == 2
    assert activities["calls_per_1000_people"] == 0.5
    assert result["lookback"]["written"] == 0 and result["lookback"]["settled"] > 0
    # Idle, with 100,000 archived contacts: one call per object, cycle and system (the
    # scan; HubSpot's deletion sweep rides in its search, Salesforce's kinds and its
    # contact-role sweep in one /composite), and never more than 2 in one cycle.
    idle = result["idle"]
    assert idle["archived_contacts"] == 100_000
    for obj, calls in idle["calls_per_cycle"].items():
        assert calls == {"hubspot": 1, "salesforce": 1}, (obj, calls)
        assert max(idle["most_in_a_cycle"][obj].values()) <= 2, obj


def test_a_throttled_run_reports_the_limits_and_what_they_cost() -> None:
    result = bench("--records", "1200", "--archived", "1000")
    assert result["throttled"] is True
    assert result["limits"]["hubspot"] == {
        "rate": [190, 10_000],
        "search_rate": [5, 1_000],
        "daily": 1_000_000,
    }
    assert result["limits"]["salesforce"]["concurrent"] == 25
    assert set(result["http_429"]) == {"hubspot", "salesforce"}
    assert all(n >= 0 for n in result["http_429"].values())
    assert 0 <= sum(result["backfill"]["http_429"].values()) <= sum(result["http_429"].values())
    # 1,200 people, 120 companies, 120 deals: 6 + 1 + 1 searches at least, 5 in any second
    floor = result["rate_limit_floor_calls"]
    assert floor["hubspot_searches"] == 8 and floor["hubspot"] > floor["hubspot_searches"]
    bound = result["rate_limit_bound_s"]
    assert bound["hubspot"] == 1.0 and bound["salesforce"] == 0  # the 6th to 8th wait 1 s
    assert bound["max"] == max(bound["hubspot"], bound["salesforce"])
    assert result["wall_s"] == result["backfill"]["seconds"] > 0
    assert result["cpu_ms_per_record"] > 0
    assert result["store_bytes"] > 0 and result["wal_peak_bytes"] > 0
    projection = result["projection_1m_people"]
    assert projection["people"] == 1_000_000 and "linear" in projection["projection"]
    assert projection["rate_limit_bound_s"]["max"] > bound["max"]
    assert projection["wall_s"] > result["wall_s"]
