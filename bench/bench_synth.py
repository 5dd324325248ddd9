"""Benchmark: synthetic province generation against its targets, on one core.

Targets (issue: synthetic province): at least 100,000 people per minute and 1,000,000 QĐ 4750
table rows per minute on one core. Prints each measured rate and its ratio to the target.

    python bench/bench_synth.py [--people 100000] [--province 79] [--scratch DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from ytehub.synth.facilities import generate_facilities
from ytehub.synth.people import PopulationConfig, generate_people
from ytehub.synth.province import SynthConfig, generate_province

PEOPLE_TARGET = 100_000  # people per minute
ROWS_TARGET = 1_000_000  # table rows per minute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--province", default="79")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=Path.cwd(),
        help="where the province is written (and removed); file creation speed "
        "differs a lot between file systems",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says

    workforce = generate_facilities(args.province, 1)
    started = time.perf_counter()
    count = sum(
        1
        for _ in generate_people(
            PopulationConfig(people=args.people, province_code=args.province), workforce.facilities
        )
    )
    people_rate = count / (time.perf_counter() - started) * 60

    out = Path(tempfile.mkdtemp(prefix="ytehub-bench-synth-", dir=args.scratch))
    try:
        started = time.perf_counter()
        summary = generate_province(
            SynthConfig(people=args.people, province_code=args.province), out / "province"
        )
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(out, ignore_errors=True)
    whole_people_rate = summary.people / seconds * 60
    rows_rate = summary.table_rows / seconds * 60

    print(
        f"province {args.province}, {args.people:,} residents, one core, written under "
        f"{args.scratch}"
    )
    print(f"{'measure':<42}{'per minute':>14}{'target':>12}{'ratio':>8}")
    rows = [
        ("people generator alone", people_rate, PEOPLE_TARGET),
        ("whole province: people", whole_people_rate, PEOPLE_TARGET),
        ("whole province: QĐ 4750 table rows", rows_rate, ROWS_TARGET),
    ]
    for label, rate, target in rows:
        print(f"{label:<42}{rate:>14,.0f}{target:>12,}{rate / target:>7.1f}×")
    print(
        f"whole province: {summary.episodes:,} episodes, {summary.table_rows:,} rows, "
        f"{summary.facility_files:,} files in {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
