"""Vietnamese personal names for the synthetic population.

A Vietnamese name is family name (họ) + middle name (tên đệm, zero to two words) + given name
(tên). What matters for the platform is that the *distribution* is realistic, because record
matching is tested on it: a third of the population is called Nguyễn, Văn and Thị mark older
generations, and Huỳnh/Võ versus Hoàng/Vũ tell the South from the North. The tables live in
``ytehub/synth/data/people/names.json`` (rules as data) and are loaded once.

All strings are NFC, as Vietnamese text must be for comparison and storage.
"""

from __future__ import annotations

import json
import random
from bisect import bisect
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, Generic, Literal, TypeVar

from ytehub.synth.model import Sex

__all__ = [
    "REGIONS",
    "NameSampler",
    "Region",
    "WeightedTable",
    "era_index",
    "family_name_shares",
    "load_data",
]

Region = Literal["north", "central", "south"]
REGIONS: tuple[Region, ...] = ("north", "central", "south")

DATA_PACKAGE = "ytehub.synth.data.people"

T = TypeVar("T")


@cache
def load_data(filename: str) -> Any:
    """Parse one of the package's people data files, once per process.

    The returned structure is shared: callers must treat it as read-only.
    """
    text = resources.files(DATA_PACKAGE).joinpath(filename).read_text(encoding="utf-8")
    return json.loads(text)


class WeightedTable(Generic[T]):
    """Values with cumulative weights, drawn by bisection on one uniform number.

    Several times cheaper than ``random.choices`` in the generator's inner loop, and taking the
    uniform number as an argument keeps every draw on the caller's single random stream.
    """

    __slots__ = ("cumulative", "total", "values")

    def __init__(self, items: Iterable[tuple[T, float]]) -> None:
        values: list[T] = []
        cumulative: list[float] = []
        running = 0.0
        for value, weight in items:
            if weight < 0:
                raise ValueError(f"negative weight {weight} for {value!r}")
            if weight == 0:
                continue
            running += weight
            values.append(value)
            cumulative.append(running)
        if not values:
            raise ValueError("a weighted table needs at least one positive weight")
        self.values: tuple[T, ...] = tuple(values)
        self.cumulative: tuple[float, ...] = tuple(cumulative)
        self.total: float = running

    @classmethod
    def of(cls, weights: Mapping[T, float]) -> WeightedTable[T]:
        return cls(weights.items())

    def draw(self, u: float) -> T:
        """The value for the uniform number ``u`` in [0, 1)."""
        i = bisect(self.cumulative, u * self.total)
        return self.values[i if i < len(self.values) else -1]

    def share(self, value: T) -> float:
        """Probability of ``value`` (0 if absent); for tests and reports."""
        total = 0.0
        previous = 0.0
        for v, c in zip(self.values, self.cumulative, strict=True):
            if v == value:
                total += c - previous
            previous = c
        return total / self.total


def era_index(birth_year: int) -> int:
    """Index of the naming era (0–3) that a birth year falls in."""
    bounds = _tables().era_bounds
    return bisect(bounds, birth_year)


def family_name_shares(region: Region) -> dict[str, float]:
    """Expected share (0–1) of each family name among Kinh people whose family comes from
    ``region``; the reference the tests compare generated populations with."""
    table = _tables().family[region]
    return {name: table.share(name) for name in dict.fromkeys(table.values)}


class _Tables:
    """All name tables, built once from names.json."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.era_bounds: tuple[int, ...] = tuple(data["eras"]["bounds"])
        eras = len(self.era_bounds) + 1

        entries = data["family_names"]["entries"]
        self.family: dict[Region, WeightedTable[str]] = {}
        for region in REGIONS:
            items: list[tuple[str, float]] = []
            for entry in entries:
                if "variants" in entry:
                    first, second = entry["variants"]
                    p = float(entry["first_share"][region])
                    items.append((first, entry["share"] * p))
                    items.append((second, entry["share"] * (1.0 - p)))
                else:
                    items.append((entry["name"], entry["share"]))
            self.family[region] = WeightedTable(items)

        self.ethnic: dict[str, tuple[float, WeightedTable[str]]] = {
            code: (float(group["share"]), WeightedTable.of(group["names"]))
            for code, group in data["ethnic_family_names"]["groups"].items()
        }

        middle = data["middle_names"]
        self.two_word: tuple[float, ...] = tuple(middle["two_word_probability"])
        self.no_middle: tuple[float, ...] = tuple(middle["none_probability"])
        self.middle: dict[tuple[str, int], WeightedTable[str]] = {}
        self.second_middle: dict[tuple[str, int], WeightedTable[str]] = {}
        self.given: dict[tuple[str, int], WeightedTable[str]] = {}
        for sex in ("male", "female"):
            traditional = middle["traditional"][sex]
            for era in range(eras):
                weights = {name: w[era] for name, w in middle[sex].items()}
                self.middle[(sex, era)] = WeightedTable.of(weights)
                self.second_middle[(sex, era)] = WeightedTable(
                    (name, w) for name, w in weights.items() if name != traditional
                )
                self.given[(sex, era)] = WeightedTable(
                    (name, w[era]) for name, w in data["given_names"][sex].items()
                )
        self.common: dict[str, tuple[tuple[str, str, str], ...]] = {
            sex: tuple((f, m, g) for f, m, g in data["common_full_names"][sex])
            for sex in ("male", "female")
        }


@cache
def _tables() -> _Tables:
    return _Tables(load_data("names.json"))


class NameSampler:
    """Draws names on the caller's random stream.

    ``common_name_boost`` is the extra probability of drawing one of the most common full names
    (or, when the family name is inherited, one of their middle + given pairs): a knob to make
    record matching harder on purpose.
    """

    __slots__ = ("_boost", "_rand", "_t")

    def __init__(self, rng: random.Random, common_name_boost: float = 0.0) -> None:
        if not 0.0 <= common_name_boost <= 1.0:
            raise ValueError("common_name_boost must be between 0 and 1")
        self._rand = rng.random
        self._boost = common_name_boost
        self._t = _tables()

    def family_name(self, region: Region, ethnicity_code: str = "01") -> str:
        """An independently drawn family name for someone whose family comes from ``region``."""
        rand = self._rand
        own = self._t.ethnic.get(ethnicity_code)
        if own is not None and rand() < own[0]:
            return own[1].draw(rand())
        return self._t.family[region].draw(rand())

    def middle_and_given(self, sex: Sex, birth_year: int) -> tuple[str, str]:
        """Middle name (possibly empty or two words) and given name for the birth year's era."""
        rand = self._rand
        if self._boost and rand() < self._boost:
            common = self._t.common[sex]
            _, middle, given = common[int(rand() * len(common))]
            return middle, given
        return self._plain_middle_and_given(sex, birth_year)

    def _plain_middle_and_given(self, sex: Sex, birth_year: int) -> tuple[str, str]:
        rand = self._rand
        t = self._t
        era = bisect(t.era_bounds, birth_year)
        key = (sex, era)
        u = rand()
        if u < t.no_middle[era]:
            middle = ""
        else:
            middle = t.middle[key].draw(rand())
            if u > 1.0 - t.two_word[era]:
                second = t.second_middle[key].draw(rand())
                if second != middle:
                    middle = f"{middle} {second}"
        last = middle.rpartition(" ")[2]
        given = t.given[key].draw(rand())
        if given == last:  # "Minh Minh" is not a name; one redraw makes it rare enough
            given = t.given[key].draw(rand())
        return middle, given

    def full_name(
        self, sex: Sex, birth_year: int, region: Region, ethnicity_code: str = "01"
    ) -> tuple[str, str, str]:
        """(family, middle, given) for someone whose family name is not inherited here."""
        if self._boost and self._rand() < self._boost:
            common = self._t.common[sex]
            return common[int(self._rand() * len(common))]
        family = self.family_name(region, ethnicity_code)
        middle, given = self._plain_middle_and_given(sex, birth_year)
        return family, middle, given
