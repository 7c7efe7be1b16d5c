"""Helpers of the browser tests (a module of its own: `conftest` is a name every test folder may use)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """Debian's Chromium: /usr/bin/chromium, else ``chromium`` on PATH, else None."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_env(root: Path) -> dict:
    """The environment for a udl subprocess: its own cache and data folders, one thread, no display."""
    env = dict(os.environ, UDL_CACHE_DIR=str(root / "cache"), UDL_DATA_DIR=str(root / "data"),
               MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("UDL_NUM_THREADS", None)
    return env


def udl_command(*args: str) -> list[str]:
    """``udl ...`` run by this interpreter (the installed package, whichever venv runs pytest)."""
    return [sys.executable, "-m", "udl", *args]


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never through a proxy


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    """Poll ``url`` until it answers; fail early, with the server's output, when it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with status {proc.returncode}:\n{log.read_text()}")
        try:
            with _DIRECT.open(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers, even if not with 200
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"no answer from {url} within {timeout:.0f} s:\n{log.read_text()}")
