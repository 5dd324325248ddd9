"""Benchmark: end-to-end ingest of the synthetic province's QĐ 4750 files, against the issue's
targets and against the ceiling of parsing alone.

1. A synthetic province of ``--people`` persons over a year is generated once into the
   scratch directory (an episode is XML1 + about 8 drug and service lines + about 3 lab lines).
2. The ceiling: lxml parsing of every envelope plus base64 decoding and lxml parsing of every
   inner table, nothing else (one process).
3. For each database: a fresh, migrated database; ``ytehub ingest <folder>`` runs as a child
   process (safe reading, validation, registry register-or-match, FHIR mapping, storage with
   indexes, outbox and audit; past its first files it prepares them in a worker process);
   episodes per second (wall clock), our rate as a fraction of the ceiling, and the peak
   resident memory of the ingest's processes together (sampled every 0.1 s, and never less
   than the largest single process's own peak). Targets: >= 1,000 episodes/s into SQLite,
   >= 700 into PostgreSQL, peak memory <= 1 GiB.
4. The storage floor: every row the ingest wrote, in every table, inserted again into empty
   copies of the tables with the same indexes; what storing alone costs. SQLite: through the
   driver, in chunks of 50,000 rows. PostgreSQL: server-side, ``INSERT … SELECT``.

    python bench/bench_ingest.py                          # both databases, 10,000 people
    python bench/bench_ingest.py --db sqlite --people 3000

Run time on the 2-core reference machine: about 25 s to generate 10,000 people and one
minute per 10,000 episodes per database at the rates measured (see the closing figures in the
docs). Scratch data lives under ``--scratch`` (default: the working directory) and is removed
at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _fhir_env as env
from lxml import etree

from ytehub.synth.province import SynthConfig, generate_province

TARGETS = {"sqlite": 1_000.0, "postgresql": 700.0}
MEMORY_LIMIT = 1024**3
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def ceiling(files: list[Path]) -> tuple[int, float]:
    """(episodes, seconds) for lxml + base64 alone over ``files``."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    episodes = 0
    started = time.perf_counter()
    for path in files:
        root = etree.fromstring(path.read_bytes(), parser)
        for hoso in root.iter("HOSO"):
            episodes += 1
            for content in hoso.iter("NOIDUNGFILE"):
                etree.fromstring(base64.b64decode(content.text or ""), parser)
    return episodes, time.perf_counter() - started


def run_ingest(folder: Path, data_dir: Path, url: str) -> tuple[float, int]:
    """(seconds, peak RSS in bytes) of `ytehub ingest folder` in a child process."""
    environment = {
        **os.environ,
        "YTEHUB_DATA_DIR": str(data_dir),
        "YTEHUB_DATABASE_URL": url,
        "YTEHUB_CONFIG": str(data_dir / "none.toml"),
    }
    subprocess.run(
        [sys.executable, "-m", "ytehub.cli", "init"], env=environment, check=True,
        capture_output=True,
    )  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-m", "ytehub.cli", "ingest", str(folder)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        together = 0
        while process.poll() is None:  # ends with the child
            together = max(together, tree_rss(process.pid))
            time.sleep(0.1)
        errors = process.stderr.read() if process.stderr else ""
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 1):  # 1: some file rejected (reported in the summary)
        raise RuntimeError(errors[-2000:])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(together, max(peak_kib, before) * 1024)


def tree_rss(root: int) -> int:
    """Resident bytes of process ``root`` and all its descendants (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rpartition(")")[2].split()[1])
            parents.setdefault(parent, []).append(int(entry.name))
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        pending.extend(parents.get(pid, ()))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
        except (OSError, ValueError, IndexError):
            continue
    return total


def stored_episodes(url: str, data_dir: Path) -> int:
    if url.startswith("sqlite"):
        with sqlite3.connect(data_dir / "ytehub.db") as connection:
            return connection.execute("SELECT count(*) FROM ingest_episodes").fetchone()[0]
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM ingest_episodes")).scalar_one()
    engine.dispose()
    return int(count)


def storage_floor(database: Path, scratch: Path) -> tuple[int, float]:
    """(rows, seconds) to insert every row the ingest wrote (every table) into an empty copy of
    the schema straight through the driver, a table at a time in one transaction: what the
    storage alone costs, with no parsing, mapping, registry or Python per row."""
    copy = scratch / "floor.db"
    source = sqlite3.connect(database)
    target = sqlite3.connect(copy, isolation_level=None)
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=NORMAL")
    schema = source.execute(
        "SELECT type, name, sql FROM sqlite_master"
        " WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    for _kind, _name, sql in sorted(schema, key=lambda item: item[0] != "table"):  # tables 1st
        target.execute(sql)
    tables = [name for kind, name, _sql in schema if kind == "table"]
    rows, seconds = 0, 0.0
    for table in tables:
        cursor = source.execute(f"SELECT * FROM {table}")
        marks = ", ".join("?" for _ in cursor.description)
        # In chunks: a benchmark that held every row would lend its size to the next child
        # process's peak memory (a forked child starts with the parent's pages).
        while data := cursor.fetchmany(50_000):
            started = time.perf_counter()
            target.execute("BEGIN")
            target.executemany(f"INSERT INTO {table} VALUES ({marks})", data)
            target.execute("COMMIT")
            seconds += time.perf_counter() - started
            rows += len(data)
    source.close()
    target.close()
    copy.unlink()
    return rows, seconds


def storage_floor_postgres(url: str) -> tuple[int, float]:
    """(rows, seconds) for PostgreSQL to insert every row the ingest wrote again, server-side
    (``INSERT … SELECT`` into copies of the tables with the same indexes): the database's own
    work for those rows, with no client, network or driver in it."""
    import psycopg

    rows, seconds = 0, 0.0
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        connection.execute("CREATE SCHEMA floor")
        for table in tables:
            connection.execute(f"CREATE TABLE floor.{table} (LIKE public.{table} INCLUDING ALL)")
        connection.commit()
        for table in tables:
            started = time.perf_counter()
            done = connection.execute(f"INSERT INTO floor.{table} SELECT * FROM public.{table}")
            connection.commit()
            seconds += time.perf_counter() - started
            rows += max(done.rowcount, 0)
        connection.execute("DROP SCHEMA floor CASCADE")
        connection.commit()
    return rows, seconds


def line(label: str, value: float, unit: str, target: float, ratio: float) -> None:
    print(f"  {label:<46}{value:>12,.1f} {unit:<6}{target:>10,.0f}  {ratio:6.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--scratch", type=Path, default=Path.cwd())
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix=".bench-ingest-", dir=args.scratch))
    ok = True
    try:
        province = root / "province"
        started = time.perf_counter()
        summary = generate_province(SynthConfig(people=args.people, seed=11), province)
        print(
            f"ytehub ingest benchmark: {args.people:,} people, {summary.episodes:,} episodes in"
            f" {summary.facility_files:,} files, generated in {time.perf_counter() - started:.0f} s"
        )
        folder = province / "qd4750"
        files = sorted(folder.rglob("*.xml"))
        episodes, seconds = ceiling(files)
        top = episodes / seconds
        print(
            f"  ceiling: lxml + base64 alone {top:,.0f} episodes/s, {episodes:,} in {seconds:.1f} s"
        )
        print(f"  {'measure':<46}{'measured':>12} {'unit':<6}{'target':>10}  ratio")
        backends = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
        for backend in backends:
            data_dir = root / f"data-{backend}"
            data_dir.mkdir()
            cluster = None
            try:
                if backend == "sqlite":
                    url = f"sqlite:///{data_dir / 'ytehub.db'}"
                else:
                    cluster = env.PgCluster(root / "pg")
                    cluster.start()
                    url = cluster.url("ytehub")
                seconds, peak = run_ingest(folder, data_dir, url)
                stored = stored_episodes(url, data_dir)
                if backend == "sqlite":
                    rows, floor = storage_floor(data_dir / "ytehub.db", root)
                else:
                    rows, floor = storage_floor_postgres(url)
            finally:
                if cluster is not None:
                    cluster.stop()
            rate = episodes / seconds
            target = TARGETS[backend]
            print(f"[{backend}]")
            line("episodes/s, end to end", rate, "ep/s", target, rate / target)
            line("fraction of the parsing ceiling", 100 * rate / top, "%", 100, rate / top)
            line(
                "peak memory of the ingest's processes",
                peak / 1024**2,
                "MiB",
                1024,
                MEMORY_LIMIT / peak,
            )
            print(f"    {stored:,} of {episodes:,} episodes stored in {seconds:.1f} s")
            rate_floor = episodes / floor
            line("storage floor: its rows inserted again", rate_floor, "ep/s",
                 target, rate_floor / target)  # fmt: skip
            print(
                f"    {rows:,} rows ({rows / episodes:,.0f} an episode) inserted in"
                f" {floor:.1f} s; our rate is {100 * rate / rate_floor:.0f}% of it"
            )
            ok &= rate >= target and peak <= MEMORY_LIMIT
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
