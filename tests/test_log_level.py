"""``--log-level`` and ``log_level``: the daemon and ``syncd once`` log from that level up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from syncd.config.load import load_config
from syncd.harness import sandbox
from syncd.state import control
from syncd.state.store import Store
from tests.daemons import ROOT

SYNCD = [sys.executable, "-c", "from syncd.cli.app import main; main()"]
SETTINGS = {"daemon": {"log_json": True, "metrics": "", "lease_seconds": 3}}


def _run_daemon(
    config: Path, *options: str, until: str = "", done: Callable[[], bool] = lambda: False
) -> list[dict]:
    """``syncd run`` until a log line contains ``until`` or ``done()`` (or 30 s), then
    SIGTERM; its log lines."""
    process = subprocess.Popen(
        [*SYNCD, "run", "-c", str(config), *options],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.rstrip() for line in process.stderr or ()), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if (until and any(until in line for line in list(lines))) or done():
                break
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        reader.join(5)
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_the_daemon_logs_from_the_level_asked(tmp_path: Path) -> None:
    with sandbox.start(tmp_path / "config", sample=False, overrides=SETTINGS) as box:
        loud = _run_daemon(box.config_path, "--log-level", "debug", until="ready as")
        assert any(e["level"] == "DEBUG" and e["message"].startswith("notify ") for e in loud)
        assert any(e["message"].startswith("ready as") for e in loud)
        default = _run_daemon(box.config_path, until="ready as")
        assert {e["level"] for e in default} <= {"INFO", "WARNING", "ERROR"}
        assert any(e["message"].startswith("ready as") for e in default)
        # log_level in syncd.yaml, and --log-level over it
        text = box.config_path.read_text()
        box.config_path.write_text(text + "log_level: warning\n")
        url = load_config(box.config_path).store_url
        with Store.open(url) as store:
            before = {o: c["finished_at"] for o, c in control.last_cycles(store).items()}

            def cycled() -> bool:  # a cycle ended: its INFO line would have been logged
                now = control.last_cycles(store)
                return any(c["finished_at"] != before.get(o) for o, c in now.items())

            quiet = _run_daemon(box.config_path, done=cycled)
            assert cycled()
        assert [e for e in quiet if e["level"] in ("DEBUG", "INFO")] == []
        over = _run_daemon(box.config_path, "--log-level", "info", until="ready as")
        assert any(e["message"].startswith("ready as") for e in over)


def test_once_refuses_a_level_it_does_not_know(tmp_path: Path) -> None:
    with sandbox.start(tmp_path / "config", sample=False) as box:
        done = subprocess.run(
            [*SYNCD, "once", "--log-level", "loud", "-c", str(box.config_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert "one of debug, info, warning, error" in done.stderr
