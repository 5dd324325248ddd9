"""Batch deduplication: every source record of a set (a province's backlog, a facility's first
upload) grouped into people in one run, with the pairs a person has to decide.

Splink scores the candidate pairs on DuckDB with the registry's own comparisons and the model's
m/u and name frequencies (``training.settings``), so a pair gets the same match weight here as
from :meth:`MatchModel.weight` online. Clustering is done here, not by Splink, because of the
conflict rule: two records sharing a CCCD but not a sex or a birth year
(:func:`model.conflict`) must never end up in one cluster automatically, neither through their
own link nor through a chain of links over other records. Those pairs go to review instead.

Nothing is built in Python per candidate pair: the pairs stay in DuckDB, only the links
(pairs at or above the link threshold) come out, as numpy arrays of row numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ytehub.registry import training
from ytehub.registry.compare import COLUMNS, Comparison
from ytehub.registry.model import TF_FLOOR, MatchModel, conflict
from ytehub.registry.normalize import SourceRecord

Progress = Callable[[str, float], None]

# Review reasons, as the online service writes them (``registry_reviews.reason``).
REASON_PROBABLE = "potential"  # between the review and the link threshold, left apart
REASON_CONFLICT = "conflict:"  # + what model.conflict() names: conflict:sex, conflict:birth_year
REASON_CONFLICT_CHAIN = "conflict:cluster"  # a link that would put conflicting records together

_TEXT_COLUMNS = tuple(c for c in COLUMNS if c not in ("birth_year", "birth_month", "birth_day"))
_TF_LEVELS = {
    (comparison["output_column_name"], level.get("tf_adjustment_column"))
    for comparison in training.settings()["comparisons"]
    for level in comparison["comparison_levels"]
    if level.get("tf_adjustment_column")
}


@dataclass(frozen=True, slots=True)
class ReviewPair:
    """Two records a person should look at: ``uid_a`` < ``uid_b``."""

    uid_a: str
    uid_b: str
    probability: float
    reason: str


@dataclass(slots=True)
class DedupeResult:
    """Clusters (uid → cluster id: the smallest uid of the cluster), the pairs for review
    (most probable first), how many candidate pairs were scored and where the time went."""

    clusters: dict[str, str]
    review: list[ReviewPair]
    pairs_scored: int
    links: int  # pairs at or above the link threshold, conflicts excluded
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def cluster_count(self) -> int:
        return len(set(self.clusters.values()))


class _Clock:
    """Seconds per stage, and the caller's progress callback told as each stage starts."""

    def __init__(self, on_progress: Progress | None, stages: Sequence[tuple[str, float]]):
        self.on_progress = on_progress
        self.share = dict(stages)
        self.done = 0.0
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.on_progress is not None:
            self.on_progress(name, round(self.done, 3))
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.done = min(1.0, self.done + self.share.get(name, 0.0))

    def finish(self) -> dict[str, float]:
        if self.on_progress is not None:
            self.on_progress("done", 1.0)
        self.seconds["total"] = sum(self.seconds.values())
        return self.seconds


# Each stage's share of a run (measured at 1,000,000 records), for the progress fraction.
_STAGES = (
    ("frame", 0.09),
    ("load", 0.02),
    ("predict", 0.85),
    ("count", 0.0),
    ("conflicts", 0.01),
    ("cluster", 0.02),
    ("review", 0.01),
)


def records_frame(records: Sequence[SourceRecord]) -> pd.DataFrame:
    """The records as :func:`dedupe_frame` takes them (``training.frame``: ``uid`` and the
    columns the comparisons read)."""
    return training.frame(records)


def dedupe(
    records: Sequence[SourceRecord],
    model: MatchModel,
    on_progress: Progress | None = None,
) -> DedupeResult:
    """Group ``records`` into people with ``model``: every record's cluster, the pairs to
    review, and the stage times. ``on_progress(stage, fraction_done)`` is called as each stage
    starts and with ``("done", 1.0)`` at the end. Record uids must be unique."""
    clock = _Clock(on_progress, _STAGES)
    with clock.stage("frame"):
        data = records_frame(records)
    return _dedupe(data, model, clock)


def dedupe_frame(
    data: pd.DataFrame,
    model: MatchModel,
    on_progress: Progress | None = None,
) -> DedupeResult:
    """:func:`dedupe` for records already in a DataFrame (``uid`` and ``compare.COLUMNS``,
    e.g. read from the registry tables), which saves building a SourceRecord per row."""
    return _dedupe(data, model, _Clock(on_progress, _STAGES))


def _dedupe(data: pd.DataFrame, model: MatchModel, clock: _Clock) -> DedupeResult:
    missing = {"uid", *COLUMNS} - set(data.columns)
    if missing:
        raise ValueError(f"records frame lacks columns: {', '.join(sorted(missing))}")
    uids = data["uid"].astype(str).to_numpy(dtype=object)
    if not pd.Index(uids).is_unique:
        raise ValueError("record uids (system|local_id) are not unique")
    count = len(uids)
    if count == 0:
        return DedupeResult(clusters={}, review=[], pairs_scored=0, links=0, seconds=clock.finish())
    con = duckdb.connect()
    try:
        with clock.stage("load"):
            _load(con, data)
        with clock.stage("predict"), _quiet_splink():
            linker, api = _linker(con, model)
            predicted = linker.inference.predict(
                threshold_match_probability=model.review_threshold
            ).physical_name
        with clock.stage("count"), _quiet_splink():
            pairs_scored = api.blocked_pairs
            if pairs_scored is None:
                pairs_scored = _pairs_scored(con)
        with clock.stage("conflicts"):
            conflicts = _conflicts(con, model)
        with clock.stage("cluster"):
            links = _fetch(
                con,
                f"SELECT rid_l, rid_r, match_probability FROM {predicted}"
                " WHERE match_probability >= ?",
                model.link_threshold,
            )
            links = _without(links, conflicts)
            labels = components(count, links[0], links[1])
            labels, held_back = _keep_apart(labels, links, conflicts)
            clusters = dict(zip(uids, _smallest_uid(uids, labels), strict=True))
        with clock.stage("review"):
            probable = _fetch(
                con,
                f"SELECT rid_l, rid_r, match_probability FROM {predicted}"
                " WHERE match_probability < ?",
                model.link_threshold,
            )
            review = _review(uids, labels, probable, held_back, conflicts, model)
    finally:
        con.close()
    return DedupeResult(
        clusters=clusters,
        review=review,
        pairs_scored=pairs_scored,
        links=len(links[0]),
        seconds=clock.finish(),
    )


def score_pairs(
    records: Sequence[SourceRecord], model: MatchModel, threshold: float | None = None
) -> pd.DataFrame:
    """Every candidate pair of ``records`` as the batch run scores it: ``uid_l``, ``uid_r``,
    ``match_weight``, ``match_probability`` (at or above ``threshold`` when given). For small
    sets: explaining a run, and checking that Splink's weight is :meth:`MatchModel.weight`."""
    if not records:
        return pd.DataFrame(columns=["uid_l", "uid_r", "match_weight", "match_probability"])
    con = duckdb.connect()
    try:
        _load(con, records_frame(records))
        with _quiet_splink():
            linker, _ = _linker(con, model)
            predicted = linker.inference.predict(
                threshold_match_probability=threshold
            ).physical_name
        return con.execute(
            "SELECT l.uid AS uid_l, r.uid AS uid_r, p.match_weight, p.match_probability"
            f" FROM {predicted} AS p JOIN records AS l ON l.rid = p.rid_l"
            " JOIN records AS r ON r.rid = p.rid_r ORDER BY p.rid_l, p.rid_r"
        ).df()
    finally:
        con.close()


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink logs every step at INFO; a batch run reports its own timings."""
    logger = logging.getLogger("splink")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _load(con: duckdb.DuckDBPyConnection, data: pd.DataFrame) -> None:
    """The ``records`` table: a row number ``rid`` (Splink's id: integer joins are cheap, and
    it indexes the numpy arrays) and typed columns, with empty strings as NULL, as the Python
    side reads them (an empty value is no value, and must not form a blocking key)."""
    frame = data[["uid", *COLUMNS]].reset_index(drop=True)
    frame.insert(0, "rid", np.arange(len(frame), dtype=np.int64))
    con.register("records_input", frame)
    columns = [
        *(f"NULLIF(CAST({c} AS VARCHAR), '') AS {c}" for c in _TEXT_COLUMNS),
        *(f"CAST({c} AS INTEGER) AS {c}" for c in ("birth_year", "birth_month", "birth_day")),
    ]
    con.execute(
        "CREATE TABLE records AS SELECT CAST(rid AS BIGINT) AS rid, CAST(uid AS VARCHAR) AS uid, "
        + ", ".join(columns)
        + " FROM records_input"
    )
    con.unregister("records_input")


def _linker(con: duckdb.DuckDBPyConnection, model: MatchModel) -> tuple[Any, Any]:
    """A Splink linker on the ``records`` table with the model's parameters and its own name
    frequencies, so Splink's term-frequency adjustment is the online scorer's; and its database
    API, which counts the candidate pairs as Splink blocks them."""
    from splink import Linker

    settings = training.settings(model)
    settings["unique_id_column_name"] = "rid"
    tables = {column: model.frequencies.get(column) for _, column in _TF_LEVELS}
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("tf_adjustment_column") and not tables.get(level["tf_adjustment_column"]):
                # The model has no frequencies for this name part: MatchModel adds nothing.
                del level["tf_adjustment_column"], level["tf_adjustment_weight"]
    api = _counting_api()(connection=con)
    linker = Linker("records", settings, db_api=api, set_up_basic_logging=False)
    for column, table in tables.items():
        if table:
            linker.table_management.register_term_frequency_lookup(
                _tf_table(con, column, table), column
            )
    return linker, api


@cache
def _counting_api() -> type:
    """Splink's DuckDB API, noting the size of the table of candidate pairs Splink builds
    (and drops) during predict: counting them again would cost a second blocking pass.
    ``blocked_pairs`` stays None if a Splink version names that table otherwise."""
    from splink import DuckDBAPI

    class CountingDuckDBAPI(DuckDBAPI):  # type: ignore[misc]
        blocked_pairs: int | None = None

        def sql_pipeline_to_splink_dataframe(self, pipeline: Any, use_cache: bool = True) -> Any:
            table = super().sql_pipeline_to_splink_dataframe(pipeline, use_cache)
            if table.templated_name == "__splink__blocked_id_pairs":
                sql = f"SELECT count(*) FROM {table.physical_name}"
                self.blocked_pairs = int(self._con.execute(sql).fetchall()[0][0])
            return table

    return CountingDuckDBAPI


def _tf_table(
    con: duckdb.DuckDBPyConnection, column: str, frequencies: dict[str, float]
) -> pd.DataFrame:
    """Every value of ``column`` in the records with the model's frequency, floored as
    :meth:`MatchModel._tf_adjustment` floors it (a name the model never saw is rare)."""
    values = [
        row[0]
        for row in con.execute(
            f"SELECT DISTINCT {column} FROM records WHERE {column} IS NOT NULL"
        ).fetchall()
    ]
    return pd.DataFrame(
        {
            column: values,
            f"tf_{column}": [max(frequencies.get(v, TF_FLOOR), TF_FLOOR) for v in values],
        }
    )


def _pairs_scored(con: duckdb.DuckDBPyConnection) -> int:
    """The candidate pairs the blocking rules give (each pair once), as Splink counts them
    (a second blocking pass: only when the API could not count them during predict)."""
    from splink import DuckDBAPI
    from splink.blocking_analysis import (
        cumulative_comparisons_to_be_scored_from_blocking_rules_data,
    )

    counts = cumulative_comparisons_to_be_scored_from_blocking_rules_data(
        table_or_tables="records",
        blocking_rules=training.settings()["blocking_rules_to_generate_predictions"],
        link_type="dedupe_only",
        db_api=DuckDBAPI(connection=con),
        unique_id_column_name="rid",
    )
    return int(counts["row_count"].sum())


@dataclass(frozen=True, slots=True)
class _Conflict:
    rid_a: int
    rid_b: int
    probability: float
    reason: str


def _conflicts(con: duckdb.DuckDBPyConnection, model: MatchModel) -> list[_Conflict]:
    """Pairs for which :func:`model.conflict` objects. SQL only narrows the search (a shared
    CCCD and a sex or birth year that differ at all); the rule itself is the Python
    function, so batch and online apply the same one. Such pairs share a blocking key, so
    Splink scored them too; the probability here is the online scorer's."""
    suspects = (
        "SELECT l.rid AS rid_l, r.rid AS rid_r FROM records AS l JOIN records AS r"
        " ON l.cccd = r.cccd AND l.rid < r.rid"
        " WHERE l.sex <> r.sex OR l.birth_year <> r.birth_year"
    )
    fields = ", ".join(f"x.{c} AS {c}_l, y.{c} AS {c}_r" for c in ("uid", *COLUMNS))
    rows = con.execute(
        f"SELECT s.rid_l, s.rid_r, {fields} FROM ({suspects}) AS s"
        " JOIN records AS x ON x.rid = s.rid_l JOIN records AS y ON y.rid = s.rid_r"
        " ORDER BY s.rid_l, s.rid_r"
    ).fetchall()
    out = []
    for row in rows:
        a, b = _record(row[2::2]), _record(row[3::2])
        why = conflict(a, b)
        if why is not None:
            out.append(_Conflict(int(row[0]), int(row[1]), model.probability(a, b), why))
    return out


def _record(values: Sequence[Any]) -> SourceRecord:
    uid, *fields = values
    system, _, local_id = str(uid).partition("|")
    return SourceRecord(system, local_id, **dict(zip(COLUMNS, fields, strict=True)))


def _fetch(
    con: duckdb.DuckDBPyConnection, sql: str, *parameters: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    result = con.execute(sql, list(parameters)).fetchnumpy()
    return (
        np.asarray(result["rid_l"], dtype=np.int64),
        np.asarray(result["rid_r"], dtype=np.int64),
        np.asarray(result["match_probability"], dtype=np.float64),
    )


def _without(
    edges: tuple[np.ndarray, np.ndarray, np.ndarray], conflicts: list[_Conflict]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges less the conflicting pairs (rid_l < rid_r on both sides)."""
    if not conflicts:
        return edges
    left, right, probability = edges
    width = np.int64(max(int(left.max(initial=0)), int(right.max(initial=0))) + 1)
    banned = np.array([c.rid_a * width + c.rid_b for c in conflicts], dtype=np.int64)
    keep = ~np.isin(left * width + right, banned)
    return left[keep], right[keep], probability[keep]


def components(count: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of ``count`` nodes and the edges ``left[i]``–``right[i]``: each
    node's label is the smallest node of its component. Vectorised hooking and pointer
    jumping (a few passes over the edges), so a million links take well under a second."""
    parent = np.arange(count, dtype=np.int64)
    while len(left):
        a, b = parent[left], parent[right]
        apart = a != b
        if not apart.any():
            break
        low, high = np.minimum(a[apart], b[apart]), np.maximum(a[apart], b[apart])
        np.minimum.at(parent, high, low)  # parent[i] <= i always: no cycles
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def _smallest_uid(uids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each record's cluster id: the smallest uid among the records with its label (a sort
    and a scatter; a pandas group-by on strings takes twenty times as long)."""
    count = len(uids)
    order = np.argsort(uids.astype(str), kind="stable")
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count)
    lowest = np.full(count, count, dtype=np.int64)
    np.minimum.at(lowest, labels, rank)
    return uids[order[lowest[labels]]]


def _keep_apart(
    labels: np.ndarray,
    links: tuple[np.ndarray, np.ndarray, np.ndarray],
    conflicts: list[_Conflict],
) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Split every component that a chain of links made hold a conflicting pair: its links are
    taken again, most probable first, each only when it joins no conflicting records (the
    links held back are returned). Components without a conflict are left as they are."""
    spoiled = {int(labels[c.rid_a]) for c in conflicts if labels[c.rid_a] == labels[c.rid_b]}
    if not spoiled:
        return labels, []
    labels = labels.copy()
    left, right, probability = links
    mask = np.isin(labels[left], np.fromiter(spoiled, dtype=np.int64))
    left, right, probability = left[mask], right[mask], probability[mask]
    parent: dict[int, int] = {}
    apart: dict[int, set[int]] = {}
    for c in conflicts:
        apart.setdefault(c.rid_a, set()).add(c.rid_b)
        apart.setdefault(c.rid_b, set()).add(c.rid_a)

    def find(node: int) -> int:
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        while node != root:
            parent[node], node = root, parent.get(node, node)
        return root

    held_back = []
    for i in np.lexsort((right, left, -probability)):
        a, b = find(int(left[i])), find(int(right[i]))
        if a == b:
            continue
        if any(find(other) == b for other in apart.get(a, ())):
            held_back.append((int(left[i]), int(right[i]), float(probability[i])))
            continue
        root, child = min(a, b), max(a, b)
        parent[child] = root
        apart[root] = apart.get(root, set()) | apart.pop(child, set())
    for node in np.nonzero(np.isin(labels, np.fromiter(spoiled, dtype=np.int64)))[0]:
        labels[node] = find(int(node))
    return labels, held_back


def _review(
    uids: np.ndarray,
    labels: np.ndarray,
    probable: tuple[np.ndarray, np.ndarray, np.ndarray],
    held_back: list[tuple[int, int, float]],
    conflicts: list[_Conflict],
    model: MatchModel,
) -> list[ReviewPair]:
    """Conflicts the model rates at least probable, links held back by the conflict rule, and
    probable pairs the clustering left apart; one entry per pair, most probable first."""
    found: dict[tuple[int, int], ReviewPair] = {}

    def add(a: int, b: int, probability: float, reason: str) -> None:
        key = (min(a, b), max(a, b))
        if key not in found:
            x, y = sorted((str(uids[a]), str(uids[b])))
            found[key] = ReviewPair(x, y, float(probability), reason)

    for c in conflicts:
        if c.probability >= model.review_threshold:
            add(c.rid_a, c.rid_b, c.probability, REASON_CONFLICT + c.reason)
    for a, b, probability in held_back:
        add(a, b, probability, REASON_CONFLICT_CHAIN)
    left, right, probability = probable
    apart = labels[left] != labels[right]
    for a, b, p in zip(left[apart], right[apart], probability[apart], strict=True):
        add(int(a), int(b), float(p), REASON_PROBABLE)
    return sorted(found.values(), key=lambda r: (-r.probability, r.uid_a, r.uid_b))


def level_sql(comparison: Comparison) -> str:
    """The comparison's level as one SQL expression over ``<column>_l``/``<column>_r``: the
    index into ``comparison.levels`` (what ``comparison.classify`` returns), NULL for no
    evidence. Splink's gamma is ``len(levels) - 1 - index`` and -1 for null."""
    cases = " ".join(
        f"WHEN {level.sql} THEN {index}" for index, level in enumerate(comparison.levels[:-1])
    )
    return (
        f"CASE WHEN {comparison.null_sql} THEN NULL {cases} ELSE {len(comparison.levels) - 1} END"
    )
