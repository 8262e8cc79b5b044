"""Running csonboard as real processes in tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def csonboard(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a csonboard command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "csonboard", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or too busy starting
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


@contextmanager
def running(*args: str, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A csonboard process in the background, its stderr in ``log``; stopped
    with SIGTERM (then SIGKILL) when the block ends."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "csonboard", *args],
            env={**os.environ, **env},
            stdout=sink,
            stderr=sink,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
