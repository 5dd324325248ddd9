"""The bulk-job collector settings: applied inside the block, restored after it."""

from __future__ import annotations

import gc
import weakref

from ytehub.core.collector import BULK_THRESHOLDS, bulk_job


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_bulk_job_collects_rarely_and_restores_the_settings() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with bulk_job():
        assert gc.get_threshold() == BULK_THRESHOLDS
        assert gc.get_freeze_count() > frozen_before  # what existed before is not scanned
        # Cycles made inside are still garbage the collector finds.
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        watcher = weakref.ref(first)
        del first, second
        gc.collect()
        assert watcher() is None
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before


def test_bulk_job_restores_the_settings_after_an_error() -> None:
    before = gc.get_threshold()
    try:
        with bulk_job():
            raise RuntimeError("the job failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
