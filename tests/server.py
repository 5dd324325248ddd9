"""The real server in its own process, for tests that need a live HTTP endpoint.

It runs `python -m ytehub.cli serve` on a free loopback port, configured only through
``YTEHUB_*`` environment variables pointing at the test's database, and is always stopped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ytehub.core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 30.0
STOP_SECONDS = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTEHUB_")}
    assert settings.secret_key is not None
    env.update(
        YTEHUB_DATA_DIR=str(settings.data_dir),
        YTEHUB_DATABASE_URL=settings.resolved_database_url,
        YTEHUB_SECRET_KEY=settings.secret_key.get_secret_value(),
        YTEHUB_CONFIG=str(tmp_path / "no-such-ytehub.toml"),  # never read a stray ytehub.toml
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
        PYTHONUNBUFFERED="1",
    )
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_SECONDS)


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the server exited with code {process.returncode} before answering /health:\n"
                + log.read_text(errors="replace")
            )
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}: {error.read()[:500]!r}"
        except OSError as error:
            last = repr(error)
        time.sleep(0.2)
    pytest.fail(
        f"the server did not answer GET /health with 200 within {STARTUP_SECONDS:.0f} s "
        f"(last: {last}); its output:\n" + log.read_text(errors="replace")
    )


@contextmanager
def running_server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """Start the server on the test's database; yield its base URL; always stop it."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ytehub.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=server_env(settings, tmp_path),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(process, base_url, log)
        yield base_url
    finally:
        _stop(process)
