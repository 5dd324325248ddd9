"""Batch dedupe (ytehub.registry.dedupe) on a small synthetic province: quality against the
ground truth, the conflict rule, and the batch agreeing with the online scorer: each
comparison's SQL gives the level its Python twin gives, and Splink's match weight is
MatchModel.weight. One province, one trained model and one run are shared by the module.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import defaultdict

import duckdb
import numpy as np
import pandas as pd
import pytest

from ytehub.registry import dedupe as dedupe_module
from ytehub.registry import quality, training
from ytehub.registry.blocking import blocking_keys
from ytehub.registry.compare import COLUMNS, COMPARISONS
from ytehub.registry.dedupe import (
    REASON_CONFLICT,
    REASON_CONFLICT_CHAIN,
    DedupeResult,
    components,
    dedupe,
    dedupe_frame,
    level_sql,
    records_frame,
    score_pairs,
)
from ytehub.registry.model import MatchModel, conflict
from ytehub.registry.normalize import SourceRecord, from_identity
from ytehub.synth.identities import facility_records

PEOPLE = 2_500


def uid(record: SourceRecord) -> str:
    return f"{record.system}|{record.local_id}"


@pytest.fixture(scope="module")
def province() -> tuple[list[SourceRecord], dict[str, str]]:
    records, truth = [], {}
    for identity in facility_records(PEOPLE, seed=3):
        record = from_identity(identity)
        records.append(record)
        truth[uid(record)] = identity.person_id
    return records, truth


@pytest.fixture(scope="module")
def model(province: tuple[list[SourceRecord], dict[str, str]]) -> MatchModel:
    return training.estimate(province[0])


@pytest.fixture(scope="module")
def progress() -> list[tuple[str, float]]:
    return []


@pytest.fixture(scope="module")
def result(
    province: tuple[list[SourceRecord], dict[str, str]],
    model: MatchModel,
    progress: list[tuple[str, float]],
) -> DedupeResult:
    return dedupe(province[0], model, lambda stage, done: progress.append((stage, done)))


def person(system: str, local_id: str, **fields: object) -> SourceRecord:
    """A clean record of one made-up person; ``fields`` override."""
    values: dict[str, object] = {
        "name": "khong minh triet",
        "family": "khong",
        "middle": "minh",
        "given": "triet",
        "birth_year": 1979,
        "birth_month": 4,
        "birth_day": 23,
        "sex": "male",
        "cccd": "079079123456",
        "bhxh": "7912345678",
        "commune": "26797",
        "phone": "0912345678",
    }
    values.update(fields)
    return SourceRecord(system, local_id, **values)  # type: ignore[arg-type]


def test_quality_on_the_synthetic_province(
    province: tuple[list[SourceRecord], dict[str, str]], result: DedupeResult
) -> None:
    records, truth = province
    assert set(result.clusters) == set(truth)
    pairwise = quality.pairwise(result.clusters, truth)
    assert pairwise.precision >= 0.995, pairwise
    assert pairwise.f1 >= 0.99, pairwise
    # A cluster id is the smallest uid of its cluster.
    members: dict[str, list[str]] = defaultdict(list)
    for record, cluster in result.clusters.items():
        members[cluster].append(record)
    assert all(min(group) == cluster for cluster, group in members.items())
    assert result.cluster_count == len(members)
    assert 0 < result.links <= result.pairs_scored
    assert len(records) - result.cluster_count <= result.links  # every merge needs a link
    for pair in result.review:
        assert pair.uid_a < pair.uid_b
        assert result.clusters[pair.uid_a] != result.clusters[pair.uid_b]


def test_pairs_scored_are_the_online_candidates(
    province: tuple[list[SourceRecord], dict[str, str]], result: DedupeResult
) -> None:
    """The batch scores exactly the pairs sharing a blocking key of the online index."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(province[0]):
        for key in blocking_keys(record):
            by_key[key].append(index)
    pairs = {pair for group in by_key.values() for pair in itertools.combinations(group, 2)}
    assert result.pairs_scored == len(pairs)
    con = duckdb.connect()  # the second blocking pass, should Splink's table not be seen
    try:
        dedupe_module._load(con, records_frame(province[0]))
        assert dedupe_module._pairs_scored(con) == len(pairs)
    finally:
        con.close()


def test_progress_and_stage_times(result: DedupeResult, progress: list[tuple[str, float]]) -> None:
    stages = [stage for stage, _ in progress]
    assert stages[0] == "frame" and stages[-1] == "done"
    fractions = [done for _, done in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert set(stages[:-1]) <= set(result.seconds)
    assert result.seconds["total"] == pytest.approx(
        sum(v for k, v in result.seconds.items() if k != "total")
    )


def test_a_frame_gives_the_same_clusters(
    province: tuple[list[SourceRecord], dict[str, str]], model: MatchModel, result: DedupeResult
) -> None:
    subset = province[0][:1_500]
    by_records = dedupe(subset, model)
    by_frame = dedupe_frame(records_frame(subset), model)
    assert by_frame.clusters == by_records.clusters
    assert by_frame.review == by_records.review


def test_same_cccd_different_sex_is_never_clustered(model: MatchModel) -> None:
    a = person("79001", "A1")
    b = person("79002", "B7", sex="female")
    assert conflict(a, b) == "sex"
    assert model.probability(a, b) >= model.link_threshold  # the model alone would link them
    others = [person("79003", "C1", cccd="079079654321", given="tam", name="khong minh tam")]
    result = dedupe([a, b, *others], model)
    assert result.clusters[uid(a)] != result.clusters[uid(b)]
    [pair] = [p for p in result.review if {p.uid_a, p.uid_b} == {uid(a), uid(b)}]
    assert pair.reason == REASON_CONFLICT + "sex"
    assert pair.probability == pytest.approx(model.probability(a, b))


def test_conflicting_records_are_not_joined_through_a_third(model: MatchModel) -> None:
    """A record without CCCD or sex links to both; only one of the two links is kept."""
    a = person("79001", "A1")
    b = person("79002", "B7", birth_year=1985)
    c = person("79003", "C3", cccd=None, sex=None, bhxh=None)
    assert conflict(a, b) == "birth_year"
    assert conflict(a, c) is None and conflict(b, c) is None
    assert model.probability(a, c) >= model.link_threshold
    assert model.probability(b, c) >= model.link_threshold
    result = dedupe([a, b, c], model)
    assert result.clusters[uid(a)] != result.clusters[uid(b)]
    assert result.clusters[uid(c)] in (result.clusters[uid(a)], result.clusters[uid(b)])
    reasons = {frozenset((p.uid_a, p.uid_b)): p.reason for p in result.review}
    held_back = frozenset((uid(c), uid(a) if result.clusters[uid(c)] != uid(a) else uid(b)))
    assert reasons[held_back] == REASON_CONFLICT_CHAIN
    if model.probability(a, b) >= model.review_threshold:
        assert reasons[frozenset((uid(a), uid(b)))] == REASON_CONFLICT + "birth_year"


def test_empty_and_duplicate_input(model: MatchModel) -> None:
    empty = dedupe([], model)
    assert (empty.clusters, empty.review, empty.pairs_scored) == ({}, [], 0)
    with pytest.raises(ValueError, match="not unique"):
        dedupe([person("79001", "A1"), person("79001", "A1")], model)


def test_components() -> None:
    left = np.array([5, 1, 3, 7, 2], dtype=np.int64)
    right = np.array([6, 2, 4, 8, 6], dtype=np.int64)
    labels = components(10, left, right)
    assert labels.tolist() == [0, 1, 1, 3, 3, 1, 1, 7, 7, 9]
    chain = np.arange(999, dtype=np.int64)
    assert set(components(1_000, chain[::-1], chain[::-1] + 1).tolist()) == {0}


# -- the SQL twins -------------------------------------------------------------------------

EDGE_CASES: list[tuple[SourceRecord, SourceRecord]] = [
    (person("a", "1"), person("b", "1", birth_month=23, birth_day=4)),  # day and month swapped
    (person("a", "2"), person("b", "2", birth_year=1997)),  # year: one transposition
    (person("a", "3"), person("b", "3", birth_year=1978)),  # year: one substitution
    (person("a", "4"), person("b", "4", birth_month=None, birth_day=None)),  # year only
    (person("a", "5"), person("b", "5", birth_day=None)),  # year and month
    (person("a", "6"), person("b", "6", birth_year=None)),
    (person("a", "7"), person("b", "7", birth_month=5)),
    (person("a", "8"), person("b", "8", middle=None, name="khong triet")),
    (person("a", "9", middle=None), person("b", "9", middle=None)),
    (person("a", "10"), person("b", "10", middle="minhh", name="khong minhh triet")),
    (person("a", "11"), person("b", "11", middle="van thi", name="khong van thi triet")),
    (person("a", "12"), person("b", "12", given="khong", family="triet")),  # order swapped
    (person("a", "13"), person("b", "13", given="tiret", name="khong minh tiret")),
    (person("a", "14"), person("b", "14", given="trie", name="khong minh trie")),
    (person("a", "15"), person("b", "15", family="kong", name="kong minh triet")),
    (person("a", "16"), person("b", "16", given=None, name="khong minh")),
    (person("a", "17"), person("b", "17", cccd="079079123465")),  # swapped digits
    (person("a", "18"), person("b", "18", cccd="079079123457")),
    (person("a", "19"), person("b", "19", cccd=None, cmnd="123456789")),
    (person("a", "20", cmnd="123456789"), person("b", "20", cmnd="123456789")),
    (person("a", "21", cmnd="123456789"), person("b", "21", cmnd="123456780")),
    (person("a", "22"), person("b", "22", bhxh="7912345687")),
    (person("a", "23"), person("b", "23", bhxh="7912345")),  # one shorter: a deletion
    (person("a", "24"), person("b", "24", sex=None, commune="26800", phone="0912345679")),
    (person("a", "27", commune=None, phone=None, bhxh=None), person("b", "27")),
    (person("a", "25", name="a", family=None, middle=None, given="a"), person("b", "25")),
    (person("a", "26", given="ab", name="x ab"), person("b", "26", given="ba", name="y ba")),
]


def sql_levels(pairs: list[tuple[SourceRecord, SourceRecord]]) -> list[tuple[int | None, ...]]:
    """Each pair's levels as DuckDB computes them from ``compare.COMPARISONS`` SQL."""
    rows = [
        {f"{c}_{side}": getattr(r, c) for c in COLUMNS for side, r in (("l", a), ("r", b))}
        for a, b in pairs
    ]
    frame = pd.DataFrame(rows, columns=[f"{c}_{s}" for c in COLUMNS for s in "lr"])
    con = duckdb.connect()
    try:
        con.register("raw", frame)
        typed = ", ".join(
            f"CAST({c}_{s} AS {'INTEGER' if c.startswith('birth_') else 'VARCHAR'}) AS {c}_{s}"
            for c in COLUMNS
            for s in "lr"
        )
        levels = ", ".join(level_sql(c) for c in COMPARISONS)
        sql = f"SELECT {levels} FROM (SELECT row_number() OVER () AS i, {typed} FROM raw)"
        return con.execute(sql + " ORDER BY i").fetchall()
    finally:
        con.close()


def test_sql_levels_equal_the_python_levels(
    province: tuple[list[SourceRecord], dict[str, str]],
) -> None:
    """Every candidate pair of the province, random pairs and hand-made edge cases: the level
    DuckDB finds from each comparison's SQL is ``comparison.classify``'s. This is what lets
    Splink's estimates and batch scores stand for the online scorer."""
    records = province[0]
    by_key: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        for key in blocking_keys(record):
            by_key[key].append(index)
    candidates = sorted(
        {pair for group in by_key.values() for pair in itertools.combinations(group, 2)}
    )
    rng = random.Random(5)
    pairs = [(records[i], records[j]) for i, j in candidates]
    pairs += [tuple(rng.sample(records, 2)) for _ in range(5_000)]  # type: ignore[misc]
    pairs += EDGE_CASES + [(b, a) for a, b in EDGE_CASES]
    found = sql_levels(pairs)
    seen: dict[str, set[int | None]] = defaultdict(set)
    for (a, b), levels in zip(pairs, found, strict=True):
        for comparison, level in zip(COMPARISONS, levels, strict=True):
            assert level == comparison.classify(a, b), (comparison.name, a, b)
            seen[comparison.name].add(level)
    for comparison in COMPARISONS:  # every level was exercised, and "no evidence"
        assert seen[comparison.name] == {None, *range(len(comparison.levels))}, comparison.name


def test_splink_weights_equal_the_online_weights(
    province: tuple[list[SourceRecord], dict[str, str]], model: MatchModel
) -> None:
    """Splink's match weight for every candidate pair is MatchModel.weight, term-frequency
    adjustments included (names the model never saw take its floor), and without them when
    the model has no frequencies."""
    records = province[0][:1_200] + [a for pair in EDGE_CASES for a in pair]
    records += [
        person("z", "1", given="qwyzx", name="khong minh qwyzx"),
        person("z", "2", given="qwyzx", name="khong minh qwyzx", cccd=None),
    ]
    by_uid = {uid(r): r for r in records}
    bare = dataclasses.replace(model, frequencies={})
    for scorer in (model, bare):
        scored = score_pairs(records, scorer)
        assert len(scored) > 1_000
        for row in scored.itertuples(index=False):
            expected = scorer.weight(by_uid[row.uid_l], by_uid[row.uid_r])
            assert row.match_weight == pytest.approx(expected, rel=1e-9, abs=1e-9)
