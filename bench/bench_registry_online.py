"""Benchmark: online matching in the client registry against the issue's target.

The index is filled with ``--persons`` synthetic persons (each with the record their commune's
health station holds, through ``service.import_persons``); then ``--queries`` records that
other facilities hold of randomly chosen persons (at the default defect rates: no diacritics,
year only, CMND instead of CCCD, typos, legacy communes...) are, each in its own transaction
as an API request would be:

1. matched (``service.match``: candidate keys, scoring, best per person), and
2. registered (``service.register``: match, then link or create, history, golden record,
   audit, commit).

Latencies are wall-clock per call, one process, no HTTP. Target: p99 <= 20 ms with 1,000,000
persons in the index, on SQLite and PostgreSQL. Linkage quality is bench_registry.py's job.

    python bench/bench_registry_online.py                            # both, 1,000,000 persons
    python bench/bench_registry_online.py --db sqlite --persons 100000 --queries 2000

Run time on the 2-core reference machine (measured): filling 1,000,000 persons takes about
6 min on SQLite and 9 min on PostgreSQL (generation and normalisation about 3 min of it);
the queries take seconds. Scratch data lives under ``--scratch`` (default: the working
directory) and is removed at the end.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import _fhir_env as env

from ytehub.core import migrate
from ytehub.core.db import Database
from ytehub.registry import service
from ytehub.registry.normalize import SourceRecord, from_identity
from ytehub.synth.identities import facility_records
from ytehub.synth.model import PatientIdentity

P99_TARGET_MS = 20.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def people_records(persons: int, seed: int) -> Iterator[list[PatientIdentity]]:
    """Each person's records, grouped (facility_records yields a person's records together)."""
    group: list[PatientIdentity] = []
    for identity in facility_records(persons, seed=seed):
        if group and identity.person_id != group[0].person_id:
            yield group
            group = []
        group.append(identity)
    if group:
        yield group


def fill(db: Database, persons: int, seed: int, queries: int) -> list[tuple[str, SourceRecord]]:
    """Index each person's first record; keep a sample of their other records as queries."""
    rng = random.Random(seed)
    held: list[tuple[str, SourceRecord]] = []
    started = time.perf_counter()
    batch: list[list[SourceRecord]] = []
    stored = 0
    for seen, group in enumerate(people_records(persons, seed), start=1):
        batch.append([from_identity(group[0])])
        for identity in group[1:]:
            # reservoir sample of the other facilities' records
            if len(held) < queries:
                held.append((identity.person_id, from_identity(identity)))
            elif (j := rng.randrange(seen * 2)) < queries:
                held[j] = (identity.person_id, from_identity(identity))
        if len(batch) >= 20_000:
            with db.session() as session:
                stored += service.import_persons(session, batch, actor="bench")
            batch = []
            rate = stored / (time.perf_counter() - started)
            print(f"    indexed {stored:,} persons, {rate:,.0f}/s", flush=True)
    if batch:
        with db.session() as session:
            stored += service.import_persons(session, batch, actor="bench")
    print(f"    indexed {stored:,} persons in {time.perf_counter() - started:.0f} s", flush=True)
    db.optimize()
    return held


def run(db: Database, held: list[tuple[str, SourceRecord]], label: str) -> bool:
    with db.session() as session:
        model = service.active_model(session)
    match_ms: list[float] = []
    register_ms: list[float] = []
    candidates: list[int] = []
    for _truth, query in held:
        with db.session() as session:
            started = time.perf_counter()
            found = service.match(session, query, model)
            match_ms.append(1000 * (time.perf_counter() - started))
            candidates.append(len(found))
    for _truth, query in held:
        started = time.perf_counter()
        with db.session() as session:
            service.register(session, query, actor="bench", model=model)
        register_ms.append(1000 * (time.perf_counter() - started))
    ok = True
    for name, values in (("match", match_ms), ("register-or-match", register_ms)):
        p99 = percentile(values, 0.99)
        ok &= p99 <= P99_TARGET_MS
        print(
            f"  {label} {name:<18} p99 {p99:7.2f} ms   target {P99_TARGET_MS:.0f} ms"
            f"   ratio {P99_TARGET_MS / p99:5.2f}x   (p50 {statistics.median(values):.2f} ms,"
            f" max {max(values):.1f} ms, {len(values):,} calls)"
        )
    print(
        f"    candidates per query: mean {statistics.mean(candidates):.1f}, max {max(candidates)}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scratch", type=Path, default=Path.cwd())
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    print(f"ytehub registry online matching: {args.persons:,} persons, {args.queries:,} queries")
    ok = True
    for backend in backends:
        root = Path(tempfile.mkdtemp(prefix=f".bench-registry-{backend}-", dir=args.scratch))
        cluster = None
        try:
            if backend == "sqlite":
                url = f"sqlite:///{root / 'ytehub.db'}"
            else:
                cluster = env.PgCluster(root / "pg")
                cluster.start()
                url = cluster.url("ytehub")
            db = Database(url)
            migrate.upgrade(db.engine)
            print(f"[{backend}]")
            held = fill(db, args.persons, args.seed, args.queries)
            ok &= run(db, held, f"[{backend}]")
            db.dispose()
        finally:
            if cluster is not None:
                cluster.stop()
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
