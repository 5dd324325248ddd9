"""Candidate keys: a new record is compared only with records sharing at least one key.

The keys are the Splink prediction blocking rules (``training.PREDICTION_BLOCKS``) written as
strings, so the online index (a table of keys) and the batch run find the same candidates.
A key made from a value a person's records rarely disagree on (CCCD, BHXH, phone) finds a
record even when the name is mistyped; a key of name and birth date finds one whose
identifiers are missing or mistyped.
"""

from __future__ import annotations

from ytehub.registry.normalize import SourceRecord
from ytehub.registry.training import PREDICTION_BLOCKS


def blocking_keys(record: SourceRecord) -> list[str]:
    keys = []
    for index, columns in enumerate(PREDICTION_BLOCKS):
        values = [getattr(record, column) for column in columns]
        if all(value is not None and value != "" for value in values):
            keys.append(f"{index}:" + "|".join(str(v) for v in values))
    return keys
