"""Linkage quality against ground truth: pairwise and cluster precision, recall and F1."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int

    @classmethod
    def of(cls, tp: int, fp: int, fn: int) -> Scores:
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1, tp, fp, fn)


def _pairs_within(groups: Iterable[list[Hashable]]) -> int:
    return sum(len(g) * (len(g) - 1) // 2 for g in groups)


def pairwise(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]) -> Scores:
    """Pairs of records put together by ``predicted`` (record → cluster) against ``truth``
    (record → person), counted without listing the pairs."""
    both: dict[tuple[Hashable, Hashable], int] = defaultdict(int)
    clusters: dict[Hashable, int] = defaultdict(int)
    people: dict[Hashable, int] = defaultdict(int)
    for record, cluster in predicted.items():
        person = truth[record]
        both[(cluster, person)] += 1
        clusters[cluster] += 1
        people[person] += 1
    tp = sum(n * (n - 1) // 2 for n in both.values())
    predicted_pairs = sum(n * (n - 1) // 2 for n in clusters.values())
    true_pairs = sum(n * (n - 1) // 2 for n in people.values())
    return Scores.of(tp, predicted_pairs - tp, true_pairs - tp)


def clusters(predicted: Mapping[Hashable, Hashable], truth: Mapping[Hashable, Hashable]) -> Scores:
    """Whole clusters: a predicted cluster is right when it is exactly one person's records."""
    by_cluster: dict[Hashable, set[Hashable]] = defaultdict(set)
    by_person: dict[Hashable, set[Hashable]] = defaultdict(set)
    for record, cluster in predicted.items():
        by_cluster[cluster].add(record)
        by_person[truth[record]].add(record)
    true_sets = {frozenset(s) for s in by_person.values()}
    exact = sum(1 for s in by_cluster.values() if frozenset(s) in true_sets)
    return Scores.of(exact, len(by_cluster) - exact, len(by_person) - exact)


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Hashable, Hashable] = {}

    def find(self, item: Hashable) -> Hashable:
        parent = self.parent.setdefault(item, item)
        if parent != item:
            root = self.find(parent)
            self.parent[item] = root
            return root
        return item

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb, key=str)] = min(ra, rb, key=str)
