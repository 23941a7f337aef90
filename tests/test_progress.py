"""Long work shows progress: the engine's progress callback, ``syncd once`` on a terminal,
the daemon's progress log lines, and no scheduler noise while a long cycle runs."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from syncd.cli import progress as cli_progress
from syncd.harness import sandbox
from syncd.sync.progress import Tally
from tests.daemons import Daemon
from tests.factories import syncd_cli
from tests.test_daemon import SETTINGS as DAEMON_SETTINGS
from tests.world import World


def _seed(world: World, people: int) -> None:
    for n in range(people):
        world.hubspot.add_contact(
            {
                "email": f"hs{n}@example.com",
                "lastname": f"H{n}",
                "company": "Acme",
                "lifecyclestage": "lead",
            }
        )
    for n in range(people // 2):
        world.salesforce.add(
            "Lead", {"Email": f"sf{n}@example.com", "LastName": f"S{n}", "Company": "Acme"}
        )


def _totals(tally: Tally) -> dict[str, Counter[str]]:
    totals: dict[str, Counter[str]] = {k: Counter() for k in ("read", "created", "updated")}
    totals["rejected"] = Counter()
    for (_, system), counts in tally.snapshot().items():
        for name in totals:
            if getattr(counts, name):
                totals[name][system] += getattr(counts, name)
    return totals


def test_the_progress_callback_adds_up_to_the_cycle_report(world: World) -> None:
    _seed(world, 30)
    world.engine.chunk = 7  # several pages and chunks, each told on its own
    tally = Tally()
    world.engine.progress = tally
    first = world.cycle()
    assert first.read == {"hubspot": 30, "salesforce": 15}
    assert sum(first.created.values()) == 45
    got = _totals(tally)
    assert got["read"] == first.read
    assert got["created"] == first.created
    assert got["updated"] == first.updated
    assert got["rejected"] == first.rejected
    assert tally.phases["person"] == "reading sales activities"  # after merging and writing

    # an edit on each side: the second cycle's updates are told as well
    world.salesforce.add(
        "Lead", {"Email": "late@example.com", "LastName": "Late", "Company": "Acme"}
    )
    again = Tally()
    world.engine.progress = again
    second = world.cycle()
    assert sum(second.read.values()) > 0
    got = _totals(again)
    assert got["read"] == second.read and got["created"] == second.created
    assert got["updated"] == second.updated


def test_once_on_a_terminal_shows_each_object_with_its_counts(world: World) -> None:
    _seed(world, 12)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    with cli_progress.shown(console, [world.engine.marketing, world.engine.crm]) as tally:
        world.engine.progress = tally
        report = world.cycle()
    text = out.getvalue()
    assert "person" in text
    assert f"read hubspot {report.read['hubspot']}" in text
    assert f"salesforce {report.read['salesforce']}" in text
    written = report.created["salesforce"] + report.updated["salesforce"]
    assert f"written hubspot {report.created['hubspot']}" in text
    assert f"salesforce {written}" in text


_syncd = syncd_cli


def test_dry_run_says_would_create_and_once_says_created(tmp_path: Path) -> None:
    with sandbox.start(tmp_path / "config") as box:  # the sample data: people to create
        config = str(box.config_path)
        planned = _syncd("once", "--dry-run", "--config", config)
        assert planned.returncode == 0, planned.stderr
        heading = next(line for line in planned.stdout.splitlines() if "would create" in line)
        assert "would update" in heading and "created" not in heading
        assert "dry run: would be written, nothing was" in planned.stdout
        assert "created" not in planned.stdout.replace("would create", "")
        assert "read hubspot" not in planned.stderr  # stderr is no terminal: no progress
        done = _syncd("once", "--config", config)
        assert done.returncode == 0, done.stderr
        heading = next(line for line in done.stdout.splitlines() if "created" in line)
        assert "updated" in heading and "would" not in done.stdout


SETTINGS = {
    **DAEMON_SETTINGS,
    "daemon": {
        **DAEMON_SETTINGS["daemon"],
        "progress_log_seconds": 0.3,
        "resync_poll_seconds": 0.5,
    },
}


def _events(daemon: Daemon) -> list[dict]:
    return [json.loads(line) for line in list(daemon.lines) if line.startswith("{")]


def test_the_daemon_logs_progress_during_a_long_cycle_and_no_scheduler_noise(
    tmp_path: Path, start: Callable[[Path], Daemon]
) -> None:
    with sandbox.start(tmp_path / "config", sample=False, overrides=SETTINGS) as box:
        box.emulators["hubspot"].seed_contacts(2500)
        salesforce = box.emulators["salesforce"]
        # every call takes a while, and three chunks are written one after the other: the
        # cycle runs seconds, and a progress line falls between two chunks' writes
        salesforce.set_latency(400)
        daemon = start(box.config_path)
        daemon.wait_for(lambda: daemon.logged("cycle of person: read"), seconds=90)
        assert daemon.stop() == 0
    events = _events(daemon)
    progress = [e for e in events if e["message"].startswith("cycle in progress: person")]
    assert len(progress) >= 2, [e["message"] for e in events][-20:]
    last = progress[-1]
    assert last["object"] == "person" and last["read"]["hubspot"] > 0
    assert "read hubspot" in last["message"] and "/s)" in last["message"]
    assert any(e["written"].get("salesforce", 0) > 0 for e in progress)
    # the summary line's message is words; the counts are fields of their own
    (done,) = [e for e in events if e["message"].startswith("cycle of person: read")][:1]
    assert "{" not in done["message"] and "hubspot 2500" in done["message"]
    assert done["counts"]["read"]["hubspot"] == 2500
    assert done["counts"]["created"] == {"salesforce": 2500}
    # APScheduler's skip warning is gone; our own line says it once per job and long run
    assert not any("maximum number of running instances" in line for line in daemon.lines)
    # from the end of the companies' cycle, which the people's follows, to the end of theirs
    before = next(e for e in events if e["message"].startswith("cycle of company: read"))
    during = events[events.index(before) : events.index(done)]
    skipped = Counter(e["job"] for e in during if "its last run is still running" in e["message"])
    # Which jobs fall due while a long run holds them depends on the machine's speed (a
    # frequent resync poll, the cycles' own next ticks): each says so once, not per tick.
    assert skipped and max(skipped.values()) == 1, skipped
