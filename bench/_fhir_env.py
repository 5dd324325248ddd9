"""The world bench_fhir runs in: a scratch directory, a throwaway PostgreSQL cluster, the
`ytehub serve` process, a user with a bearer token, and CPU accounting from /proc.

The cluster logic follows tests/pg.py (initdb into a directory, Unix socket only, as the
`postgres` user when root) but lives under the scratch directory and keeps fsync on.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

PG_PORT = 54371
PASSWORD = "bench-horse-42"
USERNAME = "bench.clinician"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def find_pg_bindir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4])
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class PgCluster:
    """initdb + pg_ctl start in ``root``; stop() stops it and removes the directory."""

    root: Path
    fsync: bool = True
    shared_buffers: str = "512MB"
    bindir: Path | None = None
    user: str | None = None
    started: bool = False

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}&port={PG_PORT}"

    def _run(self, *args: str) -> None:
        assert self.bindir is not None
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self.bindir = find_pg_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (initdb)")
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(self.root.parent, 0o711)  # mkdtemp made it 0700: let `postgres` through
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        data = self.root / "data"
        self._run(
            "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
            "--locale=C.UTF-8",
        )  # fmt: skip
        # Durability like SQLite's WAL + synchronous=NORMAL: a crash loses at most the last
        # commits, never consistency (synchronous_commit=off); fsync stays on unless asked.
        options = (
            f"-k {self.root} -p {PG_PORT} -c listen_addresses='' -c synchronous_commit=off"
            f" -c shared_buffers={self.shared_buffers} -c max_connections=100"
            " -c max_wal_size=4GB -c checkpoint_timeout=15min"
            + ("" if self.fsync else " -c fsync=off -c full_page_writes=off")
        )
        self.started = True
        self._run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(self.root / "server.log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip
        self._run(
            "psql", "-h", str(self.root), "-p", str(PG_PORT), "-U", "postgres", "-q", "-c",
            "CREATE DATABASE ytehub",
        )  # fmt: skip

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        except (subprocess.SubprocessError, OSError):
            pid = self.postmaster_pid()
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)
        finally:
            self.started = False


# --- CPU accounting ---------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, own user+system CPU s, CPU s of its exited and reaped children)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return int(fields[1]), own, (int(fields[13]) + int(fields[14])) / CLK_TCK


def tree_cpu(root_pids: list[int]) -> float:
    """CPU seconds used so far by the given processes, their live descendants and the children
    they have reaped (PostgreSQL backends of closed connections come and go)."""
    table: dict[int, tuple[int, float, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found:
                table[int(entry)] = found
    wanted = set(root_pids)
    changed = True
    rounds = 0
    while changed and rounds < 16:
        rounds += 1
        grown = {pid for pid, (ppid, _own, _reaped) in table.items() if ppid in wanted}
        changed = not grown <= wanted
        wanted |= grown
    return sum(table[pid][1] + table[pid][2] for pid in wanted if pid in table)


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """`ytehub serve` (uvicorn, one worker) on loopback, as a separate process."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ytehub.cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: see {self.log}\n{self.log.read_text()[-3000:]}")
            try:
                status, _body = request("GET", self.port, "/fhir/metadata", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer within {timeout:.0f} s: see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def request(
    method: str,
    port: int,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def token(port: int) -> str:
    form = urllib.parse.urlencode(
        {"grant_type": "password", "username": USERNAME, "password": PASSWORD}
    ).encode()
    status, body = request(
        "POST",
        port,
        "/auth/token",
        form,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200:
        raise RuntimeError(f"POST /auth/token: {status} {body[:500]!r}")
    return str(json.loads(body)["access_token"])


def server_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTEHUB_")}
    env.update(
        YTEHUB_DATA_DIR=str(data_dir),
        YTEHUB_DATABASE_URL=database_url,
        YTEHUB_ACCESS_TOKEN_MINUTES="600",  # one token lasts the whole run
        YTEHUB_CONFIG=str(data_dir / "none.toml"),
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep),
    )
    return env


def init_database(env: dict[str, str]) -> None:
    """`ytehub init` (schema and secret key), then a province-wide clinician."""
    subprocess.run(
        [sys.executable, "-m", "ytehub.cli", "init"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    from ytehub.core.db import Database
    from ytehub.core.security import AreaScope, service

    db = Database(env["YTEHUB_DATABASE_URL"])
    try:
        with db.session() as session:
            service.create_user(
                session,
                username=USERNAME,
                full_name="Bench Clinician",
                password=PASSWORD,
                role="clinician",
                area=AreaScope.province(),
            )
    finally:
        db.dispose()
