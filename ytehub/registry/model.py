"""The Fellegi–Sunter model: m and u probabilities per comparison level, name frequencies, the
prior, and the two thresholds. Estimated by Splink (``ytehub.registry.training``), stored
versioned in the database, applied online by :func:`score` without Splink.

Weights are log2 Bayes factors, as in Splink: a level that is 20 times likelier among true
matches than among random pairs adds log2(20) ≈ 4.3. For the exact level of a name, the
factor uses that name's own frequency instead of the average: two records both saying
"Nguyễn" agree by chance a third of the time, two saying "Khổng" almost never.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ytehub.registry.compare import COMPARISONS, levels
from ytehub.registry.normalize import SourceRecord

# The smallest frequency a name is given: a name never seen before is rare, not impossible.
TF_FLOOR = 1e-6


# Starting values per level (m, u), most agreeing first, in the order of ``compare.COMPARISONS``:
# used before any estimation and for a level the data never showed (EM leaves it untrained).
DEFAULT_LEVELS: dict[str, list[tuple[float, float]]] = {
    "given": [(0.93, 0.01), (0.04, 0.005), (0.01, 0.002), (0.02, 0.983)],
    "family": [(0.95, 0.12), (0.02, 0.01), (0.01, 0.002), (0.02, 0.868)],
    "middle": [(0.85, 0.08), (0.08, 0.3), (0.03, 0.01), (0.04, 0.61)],
    "birth": [
        (0.9, 0.0001),
        (0.01, 0.00005),
        (0.01, 0.001),
        (0.05, 0.002),
        (0.005, 0.00005),
        (0.025, 0.9968),
    ],
    "sex": [(0.995, 0.5), (0.005, 0.5)],
    "cccd": [(0.97, 1e-6), (0.02, 1e-5), (0.01, 0.99999)],
    "cmnd": [(0.97, 1e-6), (0.03, 0.999999)],
    "bhxh": [(0.97, 1e-6), (0.02, 1e-5), (0.01, 0.99999)],
    "commune": [(0.9, 0.01), (0.1, 0.99)],
    "phone": [(0.9, 0.0001), (0.1, 0.9999)],
}
DEFAULT_PRIOR = 1e-5


@dataclass(frozen=True, slots=True)
class Grade:
    label: str  # certain, probable, possible
    vi: str


CERTAIN = Grade("certain", "chắc chắn")
PROBABLE = Grade("probable", "có khả năng")
POSSIBLE = Grade("possible", "có thể")


@dataclass(slots=True)
class MatchModel:
    """m/u per level (``levels[comparison] = [(m, u), ...]`` in the order of ``COMPARISONS``),
    the prior probability that two random records match, name frequencies and thresholds."""

    levels: dict[str, list[tuple[float, float]]]
    prior: float
    frequencies: dict[str, dict[str, float]] = field(default_factory=dict)
    link_threshold: float = 0.99  # probability at or above which a record is linked outright
    review_threshold: float = 0.80  # at or above: a potential match, for a person to decide
    possible_threshold: float = 0.20  # at or above: listed by $match as possible
    version: int = 0
    source: str = "default"
    _weights: dict[str, list[float]] = field(init=False, repr=False)
    _prior_weight: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._weights = {
            name: [_log2(m / u) for m, u in pairs] for name, pairs in self.levels.items()
        }
        self._prior_weight = _log2(self.prior / (1 - self.prior))

    def weight(self, a: SourceRecord, b: SourceRecord) -> float:
        """The match weight (log2 odds) of a pair, prior included."""
        total = self._prior_weight
        for comparison, level in zip(COMPARISONS, levels(a, b), strict=True):
            if level is None:
                continue
            total += self._weights[comparison.name][level]
            column = comparison.levels[level].tf_column
            if column is not None:
                total += self._tf_adjustment(comparison.name, column, getattr(a, column))
        return total

    def _tf_adjustment(self, comparison: str, column: str, value: str) -> float:
        table = self.frequencies.get(column)
        if not table:
            return 0.0
        u_exact = self.levels[comparison][0][1]
        return _log2(u_exact / max(table.get(value, TF_FLOOR), TF_FLOOR))

    def probability(self, a: SourceRecord, b: SourceRecord) -> float:
        return probability(self.weight(a, b))

    def grade(self, p: float) -> Grade | None:
        if p >= self.link_threshold:
            return CERTAIN
        if p >= self.review_threshold:
            return PROBABLE
        if p >= self.possible_threshold:
            return POSSIBLE
        return None

    def explain(self, a: SourceRecord, b: SourceRecord) -> list[dict[str, Any]]:
        """Per comparison: the level and what it added, for the review screen."""
        out = []
        for comparison, level in zip(COMPARISONS, levels(a, b), strict=True):
            if level is None:
                out.append({"comparison": comparison.name, "level": "null", "weight": 0.0})
                continue
            added = self._weights[comparison.name][level]
            column = comparison.levels[level].tf_column
            if column is not None:
                added += self._tf_adjustment(comparison.name, column, getattr(a, column))
            out.append(
                {
                    "comparison": comparison.name,
                    "level": comparison.levels[level].label,
                    "weight": round(added, 2),
                }
            )
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "levels": {k: [list(p) for p in v] for k, v in self.levels.items()},
            "prior": self.prior,
            "frequencies": self.frequencies,
            "link_threshold": self.link_threshold,
            "review_threshold": self.review_threshold,
            "possible_threshold": self.possible_threshold,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], version: int = 0) -> MatchModel:
        return cls(
            levels={k: [(float(m), float(u)) for m, u in v] for k, v in raw["levels"].items()},
            prior=float(raw["prior"]),
            frequencies=raw.get("frequencies") or {},
            link_threshold=float(raw.get("link_threshold", 0.99)),
            review_threshold=float(raw.get("review_threshold", 0.80)),
            possible_threshold=float(raw.get("possible_threshold", 0.20)),
            version=version,
            source=str(raw.get("source", "default")),
        )


def _log2(x: float) -> float:
    return math.log2(max(x, 1e-300))


def probability(weight: float) -> float:
    if weight > 60:
        return 1.0
    odds = 2.0**weight
    return odds / (1 + odds)


def conflict(a: SourceRecord, b: SourceRecord) -> str | None:
    """Why two records must never be linked automatically, though they share a CCCD: a sex or
    a birth year that no typo explains (the CCCD itself encodes both). None when there is no
    such conflict."""
    if a.cccd is None or a.cccd != b.cccd:
        return None
    if a.sex and b.sex and a.sex != b.sex:
        return "sex"
    if (
        a.birth_year is not None
        and b.birth_year is not None
        and not _one_digit_slip(str(a.birth_year), str(b.birth_year))
    ):
        return "birth_year"
    return None


def _one_digit_slip(x: str, y: str) -> bool:
    """Equal, one digit wrong, or two neighbouring digits swapped."""
    if len(x) != len(y):
        return False
    wrong = [i for i, (p, q) in enumerate(zip(x, y, strict=True)) if p != q]
    if len(wrong) <= 1:
        return True
    i, j = wrong[0], wrong[-1]
    return len(wrong) == 2 and j == i + 1 and x[i] == y[j] and x[j] == y[i]
