"""Benchmark: the FHIR record store and REST API (/fhir) against the issue's targets.

Every HTTP figure is measured against a real server: `ytehub serve` (uvicorn, one worker, so
one core of Python) started as a separate process on loopback, after `ytehub init`, with a
province-wide clinician's bearer token; every request is authorised and audited as in
production. Client processes (fork, a few threads each, one keep-alive connection per thread)
drive it with a bounded number of concurrent connections.

1. Mixed CRUD (20% create Patient, 10% update, 50% read, 20% search by identifier) for
   ``--seconds``: requests/s, per server core (one worker: per core = total), p50/p99 latency.
   Target >= 800 requests/s per core.
2. Transaction Bundles of ``--bundle-size`` (100) resources (Patient, Encounters, Conditions,
   Observations linked by urn:uuid references) for ``--seconds``: resources/s per core.
   Target >= 2,000 resources/s per core. Then the ceiling: the same JSON inserted straight
   through the database driver (no API, no validation, no index), a transaction per bundle's
   worth; our rate is printed as a fraction of it.
3. Patient-scoped searches on a store of ``--resources`` resources (``--patients`` patients):
   the store is loaded directly through ``RecordStore.create`` in transactions of ~1,000
   resources (validation and indexing included, no HTTP, server stopped), the load rate is
   reported, then ``--searches`` searches run over HTTP (Observation?patient=&code=,
   Encounter?subject=Patient/&date=ge, Patient?identifier=cccd|, Condition?patient=).
   Target median < 20 ms, p95 < 60 ms.

Each result line gives the measured figure, the target and the ratio (measured/target, or
target/measured for latencies, so > 1 is better than the target). CPU lines show where the time
went: server process, database server (PostgreSQL backends) and the client processes, in
CPU-seconds per wall second (the machine has 2 cores in all).

All data lives in a scratch directory under the working directory (``--scratch``), removed at
the end, also on Ctrl-C; PostgreSQL runs in a throwaway cluster (initdb, Unix socket only, fsync
on, synchronous_commit off -- the durability of SQLite's WAL with synchronous=NORMAL, which is
what ytehub configures) started and stopped by the benchmark.

    python bench/bench_fhir.py                          # both databases, full sizes
    python bench/bench_fhir.py --db sqlite --seconds 25 --resources 100000 --patients 20000
    python bench/bench_fhir.py --only search --resources 1000000 --patients 200000

Run time on the 2-core reference machine (measured): CRUD and bundles take about 1.5 minutes per
database at --seconds 25. The search part is dominated by the direct load, ~930 resources/s on
SQLite and ~590/s on PostgreSQL, so 100,000 resources take ~2 min (SQLite) and ~3 min
(PostgreSQL), and the full 1,000,000 / 200,000 about 18 min and 30 min of loading. The searches
themselves: 2,000 took ~5 min on SQLite at 100,000 resources (each search scans every resource
of its type, see the report); at 1,000,000 expect ten times that, so use --searches 500 there.
Full size, both databases: ~1.5-2 hours.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _fhir_client as client
import _fhir_data as data
import _fhir_env as env

CRUD_TARGET = 800.0  # requests/s per core
BUNDLE_TARGET = 2_000.0  # resources/s per core
MEDIAN_TARGET_MS = 20.0
P95_TARGET_MS = 60.0
TEMPLATES = 2_000  # Patient bodies the CRUD clients create from


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def line(label: str, measured: float, target: float, unit: str, lower_is_better: bool = False):
    ratio = (
        (target / measured if measured else float("inf"))
        if lower_is_better
        else (measured / target)
    )
    print(f"  {label:<44}{measured:>12,.1f} {unit:<7}{target:>10,.0f}{ratio:>8.2f}×", flush=True)


def info(text: str) -> None:
    print(f"    {text}", flush=True)


class Meter:
    """Wall time, and CPU of the server, the database server and the client processes."""

    def __init__(self, world: World) -> None:
        self.world = world

    def __enter__(self) -> Meter:
        self.wall = time.perf_counter()
        self.server = self.world.server_cpu()
        self.db = self.world.db_cpu()
        self.clients = _children_cpu()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self.wall
        self.server = self.world.server_cpu() - self.server
        self.db = self.world.db_cpu() - self.db
        self.clients = _children_cpu() - self.clients

    def report(self) -> None:
        wall = self.seconds or 1.0
        db = f", database {self.db / wall:.2f}" if self.world.backend == "postgresql" else ""
        info(
            f"CPU-s per wall-s: server {self.server / wall:.2f}{db}, "
            f"clients {self.clients / wall:.2f} (2 cores in all)"
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class World:
    """One database backend: scratch dir, optional PostgreSQL cluster, the server."""

    def __init__(self, backend: str, scratch: Path, args: argparse.Namespace) -> None:
        self.backend = backend
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix=f".bench-fhir-{backend}-", dir=scratch))
        self.data_dir = self.root / "data"
        self.cluster: env.PgCluster | None = None
        self.server: env.Server | None = None
        self.token = ""

    def setup(self) -> None:
        if self.backend == "postgresql":
            self.cluster = env.PgCluster(self.root / "pg", fsync=self.args.pg_fsync)
            self.cluster.start()
            url = self.cluster.url("ytehub")
        else:
            url = f"sqlite:///{self.data_dir / 'ytehub.db'}"
        self.env = env.server_env(self.data_dir, url)
        self.url = url
        env.init_database(self.env)

    def start_server(self) -> None:
        self.server = env.Server(self.env, self.root / "server.log")
        self.server.start()
        self.token = env.token(self.server.port)

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def server_cpu(self) -> float:
        if self.server is None or self.server.process is None:
            return 0.0
        return env.tree_cpu([self.server.process.pid])

    def db_cpu(self) -> float:
        pid = self.cluster.postmaster_pid() if self.cluster else None
        return env.tree_cpu([pid]) if pid else 0.0

    def close(self) -> None:
        try:
            self.stop_server()
        finally:
            try:
                if self.cluster is not None:
                    self.cluster.stop()
            finally:
                if not self.args.keep:
                    shutil.rmtree(self.root, ignore_errors=True)


# --- direct loading through the record store --------------------------------------------------


@contextmanager
def database(url: str) -> Iterator[Any]:
    from ytehub.core.db import Database

    db = Database(url)
    try:
        yield db
    finally:
        db.dispose()


def load_patients(url: str, people: list[Any], batch: int = 500) -> list[tuple[str, str]]:
    """Create one Patient per person directly (RecordStore); returns (id, CCCD) pairs."""
    from ytehub.records.store import RecordStore

    out: list[tuple[str, str]] = []
    with database(url) as db:
        for start in range(0, len(people), batch):
            with db.session() as session:
                store = RecordStore(session)
                for person in people[start : start + batch]:
                    cccd = data.cccd_of(person)
                    stored = store.create(data.patient(person, cccd))
                    out.append((stored.resource["id"], cccd))
    return out


def load_store(
    url: str, people: list[Any], resources: int, batch: int = 1_000
) -> tuple[list[tuple[str, str]], int, float]:
    """Load ``resources`` resources for ``len(people)`` patients straight into the store, in
    transactions of about ``batch`` resources. Returns (patients, resources, seconds)."""
    from ytehub.records.store import RecordStore

    rng = random.Random(7)
    per_patient = max(1, round(resources / max(len(people), 1)))
    patients: list[tuple[str, str]] = []
    written = 0
    started = time.perf_counter()
    step = max(len(people) // 10, 1)
    next_report = step
    with database(url) as db:
        index = 0
        while index < len(people):
            with db.session() as session:
                store = RecordStore(session)
                in_batch = 0
                while index < len(people) and in_batch < batch:
                    person = people[index]
                    index += 1
                    cccd = data.cccd_of(person)
                    pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    store.create(data.patient(person, cccd), resource_id=pid)
                    subject = f"Patient/{pid}"
                    encounters = data.shape(per_patient)[0]
                    enc_ids = [
                        str(uuid.UUID(int=rng.getrandbits(128), version=4))
                        for _ in range(encounters)
                    ]
                    made = data.clinical(
                        rng, subject, per_patient, ref=lambda e, ids=enc_ids: f"Encounter/{ids[e]}"
                    )
                    for n, body in enumerate(made):
                        store.create(body, resource_id=enc_ids[n] if n < encounters else None)
                    patients.append((pid, cccd))
                    in_batch += per_patient
                    written += per_patient
            if index >= next_report or index == len(people):
                next_report += step
                seconds = time.perf_counter() - started
                info(
                    f"loaded {written:,} resources ({index:,} patients) in {seconds:,.0f} s, "
                    f"{written / seconds:,.0f}/s"
                )
    return patients, written, time.perf_counter() - started


def analyze(world: World) -> None:
    """PostgreSQL: ANALYZE, which autovacuum would run after a bulk load anyway."""
    if world.cluster is None:
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(world.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()


# --- the three benchmarks ---------------------------------------------------------------------


def split(total: int, size: int) -> list[int]:
    """Spread ``total`` connections over processes of at most ``size`` threads."""
    processes = max(1, -(-total // size))
    return [total // processes + (1 if i < total % processes else 0) for i in range(processes)]


def bench_crud(world: World, args: argparse.Namespace) -> None:
    people = data.population(args.seed_patients + TEMPLATES, seed=11)
    started = time.perf_counter()
    seeded = load_patients(world.url, people[: args.seed_patients])
    seconds = time.perf_counter() - started
    info(
        f"seeded {len(seeded):,} Patients directly in {seconds:.1f} s "
        f"({len(seeded) / seconds:,.0f}/s)"
    )
    templates = [data.patient(p) for p in people[args.seed_patients :]]
    world.start_server()
    assert world.server is not None

    def specs(seconds: float) -> list[client.CrudSpec]:
        begin = time.monotonic() + 0.5
        return [
            client.CrudSpec(
                world.server.port, world.token, begin, begin + seconds, seeded, templates, n, w
            )
            for w, n in enumerate(split(args.connections, args.threads_per_process))
        ]

    client.run_processes(specs(args.warmup), timeout=args.warmup + 120)
    with Meter(world) as meter:
        tally = client.run_processes(specs(args.seconds), timeout=args.seconds + 300)
    rate = tally.count / meter.seconds
    every = [v for values in tally.latencies.values() for v in values]
    line("mixed CRUD requests/s (1 worker = per core)", rate, CRUD_TARGET, "req/s")
    info(
        f"{tally.count:,} requests, {args.connections} connections, p50 "
        f"{percentile(every, 0.5) * 1e3:.1f} ms, p99 {percentile(every, 0.99) * 1e3:.1f} ms"
    )
    for op, values in sorted(tally.latencies.items()):
        info(
            f"{op:<7} {len(values):>7,}  p50 {percentile(values, 0.5) * 1e3:6.1f} ms  "
            f"p99 {percentile(values, 0.99) * 1e3:6.1f} ms  errors {tally.errors.get(op, 0)}"
        )
    if meter.server:
        info(f"requests per server CPU-second: {tally.count / meter.server:,.0f}")
    meter.report()
    errors(tally)


def bench_bundles(world: World, args: argparse.Namespace) -> None:
    if world.server is None:
        world.start_server()
    assert world.server is not None
    people = data.population(64, seed=23)
    rng = random.Random(5)
    templates = [data.transaction_bundle(rng, p, data.cccd_of(p), args.bundle_size) for p in people]

    def specs(seconds: float) -> list[client.BundleSpec]:
        begin = time.monotonic() + 0.5
        return [
            client.BundleSpec(
                world.server.port, world.token, begin, begin + seconds, templates, n, w
            )
            for w, n in enumerate(split(args.bundle_connections, args.threads_per_process))
        ]

    client.run_processes(specs(min(args.warmup, 3.0)), timeout=args.warmup + 120)
    with Meter(world) as meter:
        tally = client.run_processes(specs(args.seconds), timeout=args.seconds + 300)
    rate = tally.resources / meter.seconds
    values = tally.latencies.get("bundle", [])
    line("transaction bundle resources/s (per core)", rate, BUNDLE_TARGET, "res/s")
    info(
        f"{len(values):,} bundles of {args.bundle_size}, {args.bundle_connections} connections, "
        f"p50 {percentile(values, 0.5) * 1e3:.0f} ms, p99 {percentile(values, 0.99) * 1e3:.0f} ms"
    )
    if meter.server:
        info(f"resources per server CPU-second: {tally.resources / meter.server:,.0f}")
    meter.report()
    errors(tally)
    ceiling = driver_ceiling(world, templates)
    info(
        f"ceiling: the same JSON straight through the driver {ceiling:,.0f} res/s;"
        f" our import is {100 * rate / ceiling:.1f}% of it"
    )


def driver_ceiling(world: World, bundles: list[dict[str, Any]], seconds: float = 5.0) -> float:
    """Resources/s for the same JSON inserted straight through the database driver, no API,
    no validation, no index: one transaction per bundle's worth, into a scratch table."""
    import orjson
    from sqlalchemy.engine import make_url

    bodies = [orjson.dumps(e["resource"]).decode() for b in bundles for e in b["entry"]]
    size = len(bundles[0]["entry"])
    url = make_url(world.url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        connection: Any = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        mark, begin, json_type = "?", "BEGIN IMMEDIATE", "TEXT"
    else:
        import psycopg

        connection = psycopg.connect(
            host=url.query["host"], port=int(url.query["port"]), user=url.username,
            dbname=url.database, autocommit=True,
        )  # fmt: skip
        mark, begin, json_type = "%s", "BEGIN", "JSONB"
    cursor = connection.cursor()
    cursor.execute(f"CREATE TABLE bench_ceiling (id VARCHAR(64) PRIMARY KEY, content {json_type})")
    written, serial = 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for offset in range(0, len(bodies), size):
            rows = []
            for body in bodies[offset : offset + size]:
                serial += 1
                rows.append((f"r{serial}", body))
            cursor.execute(begin)
            cursor.executemany(f"INSERT INTO bench_ceiling VALUES ({mark}, {mark})", rows)
            cursor.execute("COMMIT")
            written += len(rows)
    rate = written / (time.perf_counter() - started)
    cursor.execute("DROP TABLE bench_ceiling")
    connection.close()
    return rate


def search_paths(patients: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    rng = random.Random(3)
    code = f"{data.LOINC}%7C{data.VITALS[0][0]}"
    kinds = (
        (
            "Observation?patient&code",
            lambda pid, _c: f"/fhir/Observation?patient={pid}&code={code}",
        ),
        (
            "Encounter?subject&date",
            lambda pid, _c: f"/fhir/Encounter?subject=Patient/{pid}&date=ge2024-03-01",
        ),
        (
            "Patient?identifier",
            lambda _p, cccd: f"/fhir/Patient?identifier={data.SID_CCCD}%7C{cccd}",
        ),
        ("Condition?patient", lambda pid, _c: f"/fhir/Condition?patient=Patient/{pid}"),
    )
    out = []
    for n in range(count):
        label, make = kinds[n % len(kinds)]
        pid, cccd = rng.choice(patients)
        out.append((label, make(pid, cccd)))
    return out


def bench_search(world: World, args: argparse.Namespace) -> None:
    world.stop_server()  # the load goes straight to the database
    people = data.population(args.patients, seed=31)
    info(f"{len(people):,} synthetic people; loading {args.resources:,} resources directly")
    patients, written, seconds = load_store(world.url, people, args.resources)
    analyze(world)
    line("direct store load resources/s (1 process)", written / seconds, BUNDLE_TARGET, "res/s")
    info(f"{written:,} resources for {len(patients):,} patients in {seconds:,.0f} s")
    world.start_server()
    assert world.server is not None
    warm = client.ListSpec(
        world.server.port, world.token, time.monotonic(), search_paths(patients[::-1], 100), 1, 0
    )
    client.run_processes([warm], timeout=600)
    paths = search_paths(patients, args.searches)
    shares = split(args.search_connections, args.threads_per_process)
    begin = time.monotonic() + 0.5
    specs = [
        client.ListSpec(world.server.port, world.token, begin, paths[w :: len(shares)], n, w)
        for w, n in enumerate(shares)
    ]
    with Meter(world) as meter:
        tally = client.run_processes(specs, timeout=3_600)
    every = [v for values in tally.latencies.values() for v in values]
    median, p95 = percentile(every, 0.5) * 1e3, percentile(every, 0.95) * 1e3
    line("patient-scoped search median", median, MEDIAN_TARGET_MS, "ms", lower_is_better=True)
    line("patient-scoped search p95", p95, P95_TARGET_MS, "ms", lower_is_better=True)
    info(
        f"{len(every):,} searches, {args.search_connections} connections, "
        f"{len(every) / meter.seconds:,.0f}/s, {tally.resources:,} entries returned"
    )
    for label, values in sorted(tally.latencies.items()):
        info(
            f"{label:<26} p50 {percentile(values, 0.5) * 1e3:7.1f} ms  "
            f"p95 {percentile(values, 0.95) * 1e3:7.1f} ms  "
            f"mean {statistics.fmean(values) * 1e3:7.1f} ms  errors {tally.errors.get(label, 0)}"
        )
    meter.report()
    errors(tally)


def errors(tally: client.Tally) -> None:
    failed = sum(tally.errors.values())
    if failed:
        info(f"{failed:,} failed requests, e.g.:")
        for sample in tally.samples:
            info(f"  {sample[:400]}")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--only",
        default="crud,bundle,search",
        help="comma-separated subset of crud, bundle, search",
    )
    parser.add_argument("--seconds", type=float, default=25.0, help="per CRUD and bundle run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8, help="CRUD connections")
    parser.add_argument("--bundle-connections", type=int, default=2)
    parser.add_argument("--bundle-size", type=int, default=100)
    parser.add_argument("--search-connections", type=int, default=2)
    parser.add_argument("--threads-per-process", type=int, default=4)
    parser.add_argument("--seed-patients", type=int, default=5_000)
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--patients", type=int, default=200_000)
    parser.add_argument("--searches", type=int, default=2_000)
    parser.add_argument(
        "--pg-fsync", action=argparse.BooleanOptionalAction, default=True, help="fsync on"
    )
    parser.add_argument("--scratch", type=Path, default=Path.cwd())
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    unknown = only - {"crud", "bundle", "search"}
    if unknown:
        parser.error(f"unknown --only part(s): {', '.join(sorted(unknown))}")
    backends = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    signal.signal(signal.SIGTERM, _interrupt)
    print(
        f"ytehub FHIR benchmark: {os.cpu_count()} cores, uvicorn 1 worker, "
        f"{args.seconds:g} s per run; scratch under {args.scratch.resolve()}"
    )
    print(f"  {'measure':<44}{'measured':>12} {'unit':<7}{'target':>10}{'ratio':>9}")
    for backend in backends:
        print(f"[{backend}]", flush=True)
        world = World(backend, args.scratch, args)
        try:
            world.setup()
            if "crud" in only:
                bench_crud(world, args)
            if "bundle" in only:
                bench_bundles(world, args)
            if "search" in only:
                bench_search(world, args)
        except subprocess.CalledProcessError as error:
            print(f"  failed: {error} {error.stderr!r}")
            raise
        except KeyboardInterrupt:
            print("  interrupted; cleaning up", flush=True)
            raise SystemExit(130) from None
        finally:
            world.close()


if __name__ == "__main__":
    main()
