"""Load generators for bench_fhir: client processes, each with a few threads, each thread one
keep-alive HTTP/1.1 connection (``http.client``: it costs a third of httpx per request, and the
clients share the machine's two cores with the server and the database).

Every loop is bounded by a deadline and by a request budget.
"""

from __future__ import annotations

import copy
import http.client
import multiprocessing
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import _fhir_data as data
import orjson

JSON = "application/fhir+json"
MAX_REQUESTS_PER_THREAD = 2_000_000


@dataclass
class Tally:
    """What one thread (or, merged, a whole run) saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    resources: int = 0

    def merge(self, other: Tally) -> None:
        for op, values in other.latencies.items():
            self.latencies[op].extend(values)
        for op, count in other.errors.items():
            self.errors[op] += count
        self.samples.extend(other.samples[: max(0, 5 - len(self.samples))])
        self.resources += other.resources

    def plain(self) -> dict[str, Any]:
        return {
            "latencies": dict(self.latencies),
            "errors": dict(self.errors),
            "samples": self.samples,
            "resources": self.resources,
        }

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Tally:
        tally = cls()
        for op, values in raw["latencies"].items():
            tally.latencies[op].extend(values)
        for op, count in raw["errors"].items():
            tally.errors[op] += count
        tally.samples = list(raw["samples"])
        tally.resources = raw["resources"]
        return tally

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.latencies.values())


class Connection:
    """One keep-alive connection that reconnects after a failure."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.auth = {"Authorization": f"Bearer {token}", "Accept": JSON}
        self.connection: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = dict(self.auth)
        if body is not None:
            headers["Content-Type"] = JSON
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _timed(
    tally: Tally, connection: Connection, op: str, method: str, path: str, body: bytes | None
) -> tuple[int, bytes]:
    started = time.perf_counter()
    try:
        status, payload = connection.call(method, path, body)
    except (OSError, http.client.HTTPException) as error:
        tally.errors[op] += 1
        if len(tally.samples) < 5:
            tally.samples.append(f"{op}: {error!r}")
        return 0, b""
    tally.latencies[op].append(time.perf_counter() - started)
    if status >= 300:
        tally.errors[op] += 1
        if len(tally.samples) < 5:
            tally.samples.append(f"{op} {method} {path[:80]}: {status} {payload[:300]!r}")
    return status, payload


# --- the mixed CRUD workload ------------------------------------------------------------------

CRUD_MIX = (("create", 20), ("update", 10), ("read", 50), ("search", 20))


@dataclass(frozen=True)
class CrudSpec:
    port: int
    token: str
    start_at: float  # time.monotonic() at which to begin (same clock in every process)
    stop_at: float
    seeded: list[tuple[str, str]]  # (Patient id, CCCD)
    templates: list[dict[str, Any]]  # Patient bodies to create (identifier replaced)
    threads: int
    worker: int


def _crud_thread(spec: CrudSpec, thread: int, tally: Tally) -> None:
    rng = random.Random(spec.worker * 1000 + thread)
    connection = Connection(spec.port, spec.token)
    ops = [op for op, weight in CRUD_MIX for _ in range(weight)]
    mine = spec.seeded[(spec.worker * spec.threads + thread) :: 64] or spec.seeded
    created: list[str] = []
    serial = 0
    while time.monotonic() < spec.start_at:
        time.sleep(0.001)
    try:
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if time.monotonic() >= spec.stop_at:
                break
            op = rng.choice(ops)
            if op == "create":
                serial += 1
                body = copy.deepcopy(rng.choice(spec.templates))
                body["identifier"][0]["value"] = f"8{spec.worker:02d}{thread:02d}{serial:07d}"
                status, payload = _timed(
                    tally, connection, op, "POST", "/fhir/Patient", orjson.dumps(body)
                )
                if status == 201:
                    created.append(orjson.loads(payload)["id"])
            elif op == "update":
                target = rng.choice(created) if created and rng.random() < 0.5 else None
                target = target or rng.choice(mine)[0]
                body = copy.deepcopy(rng.choice(spec.templates))
                body["id"] = target
                body["identifier"][0]["value"] = f"7{spec.worker:02d}{thread:02d}{serial:07d}"
                body["telecom"] = [{"system": "phone", "value": f"09{rng.randrange(10**8):08d}"}]
                _timed(tally, connection, op, "PUT", f"/fhir/Patient/{target}", orjson.dumps(body))
            elif op == "read":
                target = rng.choice(created) if created and rng.random() < 0.2 else None
                target = target or rng.choice(spec.seeded)[0]
                _timed(tally, connection, op, "GET", f"/fhir/Patient/{target}", None)
            else:
                _pid, cccd = rng.choice(spec.seeded)
                path = f"/fhir/Patient?identifier={data.SID_CCCD}%7C{cccd}"
                _timed(tally, connection, op, "GET", path, None)
    finally:
        connection.close()


# --- transaction bundles ----------------------------------------------------------------------


@dataclass(frozen=True)
class BundleSpec:
    port: int
    token: str
    start_at: float
    stop_at: float
    bundles: list[dict[str, Any]]  # templates; the Patient's CCCD is made unique per request
    threads: int
    worker: int


def _bundle_thread(spec: BundleSpec, thread: int, tally: Tally) -> None:
    connection = Connection(spec.port, spec.token)
    serial = 0
    while time.monotonic() < spec.start_at:
        time.sleep(0.001)
    try:
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if time.monotonic() >= spec.stop_at:
                break
            serial += 1
            bundle = spec.bundles[(serial + thread) % len(spec.bundles)]
            patient = bundle["entry"][0]["resource"]
            patient["identifier"][0]["value"] = f"6{spec.worker:02d}{thread:02d}{serial:07d}"
            status, _payload = _timed(
                tally, connection, "bundle", "POST", "/fhir", orjson.dumps(bundle)
            )
            if status == 200:
                tally.resources += len(bundle["entry"])
    finally:
        connection.close()


# --- a fixed list of searches -----------------------------------------------------------------


@dataclass(frozen=True)
class ListSpec:
    port: int
    token: str
    start_at: float
    paths: list[tuple[str, str]]  # (label, path)
    threads: int
    worker: int


def _list_thread(spec: ListSpec, thread: int, tally: Tally) -> None:
    connection = Connection(spec.port, spec.token)
    while time.monotonic() < spec.start_at:
        time.sleep(0.001)
    try:
        for label, path in spec.paths[thread :: spec.threads]:
            status, payload = _timed(tally, connection, label, "GET", path, None)
            if status == 200:
                tally.resources += len(orjson.loads(payload).get("entry") or [])
    finally:
        connection.close()


# --- processes --------------------------------------------------------------------------------

_THREAD_OF = {CrudSpec: _crud_thread, BundleSpec: _bundle_thread, ListSpec: _list_thread}


def _process(spec: Any, out: Any) -> None:
    run = _THREAD_OF[type(spec)]
    tallies = [Tally() for _ in range(spec.threads)]
    threads = [
        threading.Thread(target=run, args=(spec, t, tallies[t]), daemon=True)
        for t in range(spec.threads)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        pass
    merged = Tally()
    for tally in tallies:
        merged.merge(tally)
    out.put(merged.plain())


def run_processes(specs: list[Any], timeout: float) -> Tally:
    """Run one client process per spec (fork), wait at most ``timeout`` s, merge the tallies."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [
        context.Process(target=_process, args=(spec, queue), daemon=True) for spec in specs
    ]
    merged = Tally()
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + timeout
        for _ in processes:
            remaining = max(deadline - time.monotonic(), 1.0)
            merged.merge(Tally.of(queue.get(timeout=remaining)))
        for process in processes:
            process.join(timeout=10)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
    return merged
