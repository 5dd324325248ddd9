"""Estimate the model's m and u probabilities from the records themselves with Splink
(unsupervised: random sampling for u, expectation maximisation for m), on DuckDB.

The comparisons handed to Splink are the SQL twins of the registry's own (``compare.py``), so
the levels Splink estimates are exactly the levels the online scorer finds. Nothing here needs
labelled pairs.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ytehub.registry.compare import COLUMNS, COMPARISONS
from ytehub.registry.model import DEFAULT_LEVELS, MatchModel
from ytehub.registry.normalize import SourceRecord

# Pairs that share these are compared during EM; each session leaves its own columns fixed.
EM_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("family", "given", "birth_year"),
    ("cccd",),
    ("bhxh",),
    ("birth_year", "birth_month", "birth_day", "commune"),
)
# The pairs Splink scores in a batch run, and the candidate keys of the online index.
PREDICTION_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("cccd",),
    ("cmnd",),
    ("bhxh",),
    ("phone",),
    ("family", "given", "birth_year"),
    ("given", "birth_year", "birth_month", "birth_day"),
    ("family", "birth_year", "birth_month", "birth_day"),
    ("given", "family", "commune"),
    # survives swapped name order together with a mistyped or missing identifier
    ("birth_year", "birth_month", "birth_day", "commune"),
)
PROBABILITY_FLOOR = 1e-6
# An m the data puts near zero (a disagreement never seen among matches in training) would
# make that one disagreement a veto; real records disagree in ways synthetic ones do not.
M_FLOOR = 1e-3


def settings(model: MatchModel | None = None) -> dict[str, Any]:
    """Splink settings for our comparisons (with ``model``'s parameters when given)."""
    comparisons = []
    for comparison in COMPARISONS:
        pairs = model.levels.get(comparison.name) if model else None
        levels: list[dict[str, Any]] = [
            {
                "sql_condition": comparison.null_sql,
                "label_for_charts": "null",
                "is_null_level": True,
            }
        ]
        last = len(comparison.levels) - 1
        for index, level in enumerate(comparison.levels):
            entry: dict[str, Any] = {
                "sql_condition": "ELSE" if index == last else level.sql,
                "label_for_charts": level.label,
            }
            if level.tf_column:
                entry["tf_adjustment_column"] = level.tf_column
                entry["tf_adjustment_weight"] = 1.0
            if pairs:
                entry["m_probability"], entry["u_probability"] = pairs[index]
            levels.append(entry)
        comparisons.append(
            {
                "output_column_name": comparison.name,
                "comparison_description": comparison.description,
                "comparison_levels": levels,
            }
        )
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "uid",
        "probability_two_random_records_match": model.prior if model else 1e-4,
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": [_rule(b) for b in PREDICTION_BLOCKS],
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
    }


def _rule(columns: Sequence[str]) -> str:
    return " AND ".join(f'l."{c}" = r."{c}"' for c in columns)


def frame(records: Iterable[SourceRecord]) -> Any:
    """The records as a pandas DataFrame with the columns the SQL reads and a ``uid``."""
    import pandas as pd

    # An empty value is no value, as the Python comparisons treat it: NULL, never a key (birth
    # parts are never 0: an unknown part is None).
    rows = [
        {"uid": f"{r.system}|{r.local_id}", **{c: getattr(r, c) or None for c in COLUMNS}}
        for r in records
    ]
    data = pd.DataFrame(rows, columns=["uid", *COLUMNS])
    for column in ("birth_year", "birth_month", "birth_day"):
        data[column] = data[column].astype("Int64")
    return data


def frequencies(records: Sequence[SourceRecord]) -> dict[str, dict[str, float]]:
    """Share of records with each family, middle and given name (the term frequencies)."""
    out: dict[str, dict[str, float]] = {}
    for column in ("family", "middle", "given"):
        counts = Counter(getattr(r, column) for r in records if getattr(r, column))
        total = sum(counts.values()) or 1
        out[column] = {value: count / total for value, count in counts.items()}
    return out


def estimate(
    records: Sequence[SourceRecord],
    recall: float = 0.8,
    max_u_pairs: float = 2e6,
    seed: int = 1,
) -> MatchModel:
    """A model estimated from ``records`` (at least a few thousand, the more the better)."""
    from splink import DuckDBAPI, Linker
    from splink.internals.exceptions import EMTrainingException  # not re-exported publicly

    logging.getLogger("splink").setLevel(logging.ERROR)
    data = frame(records)
    linker = Linker(data, settings(), db_api=DuckDBAPI(), set_up_basic_logging=False)
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [_rule(("cccd",)), _rule(("bhxh",))], recall=recall
    )
    training.estimate_u_using_random_sampling(max_pairs=max_u_pairs, seed=seed)
    for block in EM_BLOCKS:
        try:
            training.estimate_parameters_using_expectation_maximisation(
                _rule(block), fix_probability_two_random_records_match=True
            )
        except EMTrainingException:
            continue  # no pairs share this key (a data set without CCCDs, say)
    saved = linker.misc.save_model_to_json()
    return MatchModel(
        levels=_levels_of(saved),
        prior=float(saved["probability_two_random_records_match"]),
        frequencies=frequencies(records),
        source=f"splink EM on {len(records):,} records",
    )


def _levels_of(saved: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """m/u per level from Splink's saved model; a value it could not estimate (the level never
    occurred in the data) keeps its default."""
    out: dict[str, list[tuple[float, float]]] = {}
    for comparison in saved["comparisons"]:
        name = comparison["output_column_name"]
        defaults = DEFAULT_LEVELS[name]
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        pairs = []
        for level, (m_default, u_default) in zip(levels, defaults, strict=True):
            m, u = level.get("m_probability"), level.get("u_probability")
            pairs.append(
                (
                    max(float(m), M_FLOOR) if m is not None else m_default,
                    max(float(u), PROBABILITY_FLOOR) if u is not None else u_default,
                )
            )
        out[name] = pairs
    return out
