"""Garbage-collector settings for bulk jobs.

CPython's cyclic collector runs a pass every 700 net allocations and, every few passes, scans
every long-lived object. A bulk ingest holds a batch's rows (about a hundred thousand tuples)
until it commits and allocates millions of short-lived dicts and strings, none of them in
cycles: the collector spent about a sixth of the run's CPU finding nothing. During a bulk job
it runs a hundred times less often and skips what existed before the job (``gc.freeze``);
cycles are still collected, only later, so memory stays bounded.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLDS = (50_000, 20, 100)


def enter_bulk_job() -> None:
    """The bulk settings for the rest of the process (a worker that only does bulk work)."""
    gc.freeze()
    gc.set_threshold(*BULK_THRESHOLDS)


@contextmanager
def bulk_job() -> Iterator[None]:
    """Collect rarely inside the block; the previous settings come back after it."""
    before = gc.get_threshold()
    enter_bulk_job()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
