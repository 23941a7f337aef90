"""Real ``syncd run`` children for the tests, each with a notify socket it reports to.

A test starts the emulators in its own process, writes a configuration, and launches
``syncd run`` as a child with ``NOTIFY_SOCKET`` pointing at a socket the test listens on,
as systemd would; the child's log lines (stderr) are kept too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Daemon:
    """One ``syncd run`` child process, its notify messages and its log lines."""

    process: subprocess.Popen[str]
    notices: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    stamped: list[tuple[float, str]] = field(default_factory=list)
    """The notify messages with the (monotonic) time they arrived."""

    def wait_for(self, what: Callable[[], bool], seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if what():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"timed out; last log lines: {self.lines[-8:]}")

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def notified(self, text: str) -> bool:
        return any(text in n for n in self.notices)

    def scrape(self, path: str = "/metrics") -> tuple[int, str]:
        """GET a path of the daemon's metrics server: (status, body)."""
        line = next(line for line in self.lines if "metrics at http://" in line)
        url = json.loads(line)["message"].split(" at ", 1)[1].rsplit("/", 1)[0] + path
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def pings_since(self, moment: float) -> int:
        """WATCHDOG=1 messages that arrived after ``moment`` (monotonic)."""
        return sum(1 for at, line in list(self.stamped) if at > moment and line == "WATCHDOG=1")

    def stop(self, sig: int = signal.SIGTERM, seconds: float = 30) -> int:
        self.process.send_signal(sig)
        return self.process.wait(seconds)


def launcher(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start ``syncd run`` children with a notify socket each; kill them at the end."""
    running: list[Daemon] = []
    sockets: list[socket.socket] = []

    def launch(config: Path, watchdog_usec: int = 2_000_000) -> Daemon:
        address = str(tmp_path / f"notify-{len(sockets)}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(address)
        listener.settimeout(0.2)
        sockets.append(listener)
        env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": str(watchdog_usec)}
        env.pop("WATCHDOG_PID", None)
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from syncd.cli.app import main; main()",
                "run",
                "-c",
                str(config),
            ],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        daemon = Daemon(process)

        def listen() -> None:
            while True:
                try:
                    message = listener.recv(4096).decode().split("\n")
                    daemon.stamped.extend((time.monotonic(), line) for line in message)
                    daemon.notices.extend(message)
                except TimeoutError:
                    if process.poll() is not None:
                        return
                except OSError:  # closed at teardown
                    return

        def read_log() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                daemon.lines.append(line.rstrip())

        threading.Thread(target=listen, daemon=True).start()
        threading.Thread(target=read_log, daemon=True).start()
        running.append(daemon)
        return daemon

    yield launch
    for daemon in running:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(10)
    for listener in sockets:
        listener.close()
