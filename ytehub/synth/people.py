"""Streaming synthetic population of one province: the Vietnamese counterpart of Synthea's people.

:func:`generate_people` makes the residents of one current (2025) province household by
household and yields them as it goes, followed by each household's babies born during the
simulated period. Memory does not grow with the population: besides per-commune tables it keeps
only counters (age-sex cells, identifier serials). One ``random.Random(seed)`` stream drives
every draw, so the same :class:`PopulationConfig` always gives the same people.

Why the pieces look as they do:

* **Ages** are drawn inside windows that keep families plausible (mothers 17–45 years older than
  their children, spouses a few years apart), and every draw is *steered* towards the
  (age band, sex) cells of the census table that are behind their target. The marginal pyramid
  then matches the table closely without holding anyone in memory.
* **Births** depend on which women live with a partner, which the household model decides, so
  their level is steered to the configured crude birth rate while the age pattern comes from the
  fertility schedule. **Deaths** use an age-sex mortality shape scaled so that the census table's
  crude death rate is the configured one.
* **Identifiers** are valid by construction (:func:`ytehub.core.ids.make_cccd`,
  :func:`~ytehub.core.ids.make_bhyt`) and unique: serials are keyed permutations (a small
  Feistel network) of per-key counters, so they look random but never repeat and need no set
  of issued numbers. BHYT coverage is steered to :data:`BHYT_COVERAGE` the same way as births.
* **Birth province** (CCCD digits 2–3) is an *old* 63-province code: for locals mostly the old
  province their commune belonged to, for migrants any other old province.

Conventions that are plausible but unconfirmed (kept in the data files or noted here): the first
two digits of the 10-digit mã số BHXH are the old code of the issuing province; the card's
province code is that same code; occupation codes are placeholders (see occupations.json).
"""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from functools import cache
from typing import Any

from ytehub.core import units
from ytehub.core.ids import PROVINCE_CODES_63, make_bhyt, make_cccd
from ytehub.synth.model import Facility, Person, Sex
from ytehub.synth.names import NameSampler, Region, WeightedTable, load_data

__all__ = [
    "BHYT_COVERAGE",
    "PopulationConfig",
    "age_sex_table",
    "generate_people",
    "merged_old_provinces",
]

BHYT_COVERAGE: float = float(load_data("bhyt.json")["coverage"])

# Mobile prefixes in use since the 2018 renumbering (Viettel 03x/086/096–098, VinaPhone
# 081–085/088/091/094, MobiFone 070/076–079/089/090/093, Vietnamobile 052/056/058/092,
# Gmobile 059/099).
_MOBILE_PREFIXES: tuple[str, ...] = (
    "032", "033", "034", "035", "036", "037", "038", "039", "052", "056", "058", "059",
    "070", "076", "077", "078", "079", "081", "082", "083", "084", "085", "086", "088",
    "089", "090", "091", "092", "093", "094", "096", "097", "098", "099",
)  # fmt: skip

# Relative population of a commune by kind (× a lognormal factor): urban wards are denser than
# rural communes; special zones (đặc khu) are small islands.
_COMMUNE_KIND_WEIGHT: dict[str, float] = {"phường": 3.0, "xã": 1.0, "đặc khu": 0.25}
_COMMUNE_SIGMA = 0.6

# Legacy 9-digit CMND kept alongside the CCCD by some people born before 1990.
_CMND_SHARE = 0.3
# Mobile phone ownership at 12–17, 18–74 and 75+ (none under 12).
_PHONE_SHARE = (0.5, 0.92, 0.6)
# MA_DKBD: share registered in their own commune when it has a station or centre; otherwise
# share registered at the commune's usual district-level centre (the rest: any in the province).
_LOCAL_REGISTRATION = 0.85
_DEFAULT_CENTRE = 0.75

_SEXES: tuple[Sex, Sex] = ("male", "female")
_MALE, _FEMALE = 0, 1
_BANDS = 17  # 0–4, 5–9, …, 75–79, 80+
_STEER_K = 20.0  # pseudo-count: how gently the age-sex steering starts

# Roles of household members; "line" says where the family name comes from.
_HEAD, _SPOUSE, _CHILD, _GRANDPARENT, _SINGLE, _PARENT = range(6)
_OWN, _LINE_F, _LINE_W = range(3)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class PopulationConfig:
    """What to generate: how many residents of which current province, over which period."""

    people: int = 20_000  # residents at the start of the period (births come on top)
    province_code: str = "79"  # any of the 34 current provinces
    seed: int = 1
    start: date = date(2025, 7, 1)  # the simulated period
    days: int = 365
    twin_rate: float = 0.01  # share of births that are twins
    common_name_boost: float = 0.0  # extra probability of the most common full names


def generate_people(config: PopulationConfig, facilities: Sequence[Facility]) -> Iterator[Person]:
    """Yield the residents of ``config.province_code``, household by household, each household's
    babies born during the period right after it.

    ``facilities`` supplies the initial-registration facility (MA_DKBD) on BHYT cards; those of
    other provinces are ignored unless the province has none. Empty: no registered facility.
    """
    return _Generator(config, facilities).run()


# --------------------------------------------------------------------------- static tables


@dataclass(frozen=True, slots=True)
class _Demography:
    """The census table and vital rates, reshaped for the generator's inner loop."""

    band_of_age: tuple[int, ...]  # age 0..100 → band 0..16
    band_lo: tuple[int, ...]
    band_hi: tuple[int, ...]
    prefix: tuple[tuple[float, ...], tuple[float, ...]]  # per sex: cumulative share by age
    age_share: tuple[tuple[float, ...], tuple[float, ...]]  # per sex: share of each single age
    target: tuple[float, ...]  # per cell (2 * band + sex): share of the population
    death_rate: tuple[float, ...]  # per cell: annual hazard, scaled to the crude death rate
    asfr: tuple[float, ...]  # per band: births per woman-year (shape of the schedule)
    crude_birth_rate: float
    male_birth_probability: float
    first_year_mortality_factor: float
    max_age: int


@cache
def _demography() -> _Demography:
    table = load_data("age_sex_2019.json")
    vital = load_data("vital_rates.json")
    bands = table["bands"]
    if len(bands) != _BANDS:
        raise ValueError(f"age_sex_2019.json must have {_BANDS} bands")
    max_age = int(table["open_band_max_age"])
    decay = float(table["open_band_decay"])
    total = sum(b["male"] + b["female"] for b in bands)

    band_lo = tuple(int(b["age_from"]) for b in bands)
    band_hi = tuple(int(b["age_to"]) if b["age_to"] is not None else max_age for b in bands)
    band_of_age = tuple(bisect(band_lo, a) - 1 for a in range(max_age + 1))
    target: list[float] = []
    for b in bands:
        target += [b["male"] / total, b["female"] / total]

    age_share: list[tuple[float, ...]] = []
    for sex_key in _SEXES:
        shares: list[float] = []
        for i, b in enumerate(bands):
            span = band_hi[i] - band_lo[i] + 1
            # the open band thins out with age
            weights = [1.0] * span if i < _BANDS - 1 else [decay**k for k in range(span)]
            scale = b[sex_key] / total / sum(weights)
            shares += [w * scale for w in weights]
        age_share.append(tuple(shares))
    prefix = tuple(tuple([0.0, *_accumulate(s)]) for s in age_share)

    mortality = vital["mortality_per_1000"]
    shape = [r / 1000.0 for pair in zip(mortality["male"], mortality["female"], strict=True)
             for r in pair]  # fmt: skip
    crude_shape = sum(t * r for t, r in zip(target, shape, strict=True))
    scale = vital["crude_death_rate_per_1000"] / 1000.0 / crude_shape
    asfr = [0.0] * _BANDS
    for lo, rate in vital["asfr_per_1000"]["bands"].items():
        asfr[band_of_age[int(lo)]] = rate / 1000.0
    srb = float(vital["sex_ratio_at_birth"])
    return _Demography(
        band_of_age=band_of_age,
        band_lo=band_lo,
        band_hi=band_hi,
        prefix=(prefix[0], prefix[1]),
        age_share=(age_share[0], age_share[1]),
        target=tuple(target),
        death_rate=tuple(r * scale for r in shape),
        asfr=tuple(asfr),
        crude_birth_rate=vital["crude_birth_rate_per_1000"] / 1000.0,
        male_birth_probability=srb / (1.0 + srb),
        first_year_mortality_factor=float(vital["first_year_mortality_factor"]),
        max_age=max_age,
    )


def _accumulate(values: Sequence[float]) -> list[float]:
    out: list[float] = []
    running = 0.0
    for v in values:
        running += v
        out.append(running)
    return out


def age_sex_table() -> dict[tuple[int, int | None, Sex], float]:
    """The configured census table as {(age_from, age_to or None, sex): share of population};
    the reference the tests compare generated pyramids with."""
    d = _demography()
    out: dict[tuple[int, int | None, Sex], float] = {}
    for b in range(_BANDS):
        hi: int | None = d.band_hi[b] if b < _BANDS - 1 else None
        for s, sex in enumerate(_SEXES):
            out[(d.band_lo[b], hi, sex)] = d.target[2 * b + s]
    return out


@cache
def merged_old_provinces(province_code: str) -> tuple[str, ...]:
    """Old (63-province) codes merged into a current province, e.g. "79" → 74, 77, 79."""
    out = []
    for old in PROVINCE_CODES_63:
        new = units.convert_legacy_province(old)
        if new is not None and new.code == province_code:
            out.append(old)
    return tuple(out)


@cache
def _commune_old_codes(province_code: str) -> tuple[tuple[units.Commune, str], ...]:
    """Each current commune with the old province it belonged to.

    A new commune reuses one predecessor's 5-digit code, so that code's old province is the
    commune's; communes without a legacy match (e.g. island zones) get the main old code.
    """
    merged = merged_old_provinces(province_code)
    main = province_code if province_code in merged else merged[0]
    out = []
    for commune in units.communes(province_code):
        legacy = units.convert_legacy_commune(commune.code)
        old = legacy.old_province_code if legacy is not None else main
        out.append((commune, old if old in merged else main))
    return tuple(out)


def _profile(points: Sequence[Sequence[float]], max_age: int) -> tuple[float, ...]:
    """Per-age multiplier from [[from_age, multiplier], …] (piecewise constant)."""
    out = [1.0] * (max_age + 1)
    for i, (lo, mult) in enumerate(points):
        hi = points[i + 1][0] if i + 1 < len(points) else max_age + 1
        for a in range(int(lo), min(int(hi), max_age + 1)):
            out[a] = float(mult)
    return tuple(out)


def _count_table(weights: dict[str, float]) -> WeightedTable[int]:
    return WeightedTable((int(k), float(v)) for k, v in weights.items())


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _mix(*values: int) -> int:
    """Deterministic 64-bit mix (splitmix64 steps): seeds serial offsets without consuming the
    random stream and without Python's salted ``hash()``."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v & 0xFFFFFFFFFFFFFFFF)) + 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x


class _Serials:
    """Unique, random-looking serials per key, with no record of the numbers already issued.

    The n-th serial of a key is a keyed permutation of n over ``range(high * low)``: a 4-round
    Feistel network on the pair (n // low, n % low), whose halves swap sizes each round so any
    product of two sizes works. A permutation never repeats, and unlike an affine map its
    consecutive outputs show no stride.
    """

    __slots__ = ("_counters", "_high", "_low", "_seed")

    def __init__(self, high: int, low: int, seed: int) -> None:
        self._high = high
        self._low = low
        self._seed = seed
        self._counters: dict[int, list[int]] = {}

    def next(self, key: int) -> int:
        slot = self._counters.get(key)
        if slot is None:
            slot = self._counters[key] = [0, *(_mix(self._seed, key, r) for r in range(4))]
        n = slot[0]
        if n >= self._high * self._low:
            raise RuntimeError(f"serials exhausted for key {key} ({self._high * self._low})")
        slot[0] = n + 1
        size_l, size_r = self._high, self._low
        left, right = divmod(n, size_r)
        for r in range(1, 5):
            mixed = ((right ^ slot[r]) * 0x9E3779B97F4A7C15 >> 29) & 0xFFFFFFFFFFFF
            left, right = right, (left + mixed) % size_l
            size_l, size_r = size_r, size_l
        return left * size_r + right


# --------------------------------------------------------------------------- per-run tables


@dataclass(slots=True)
class _Commune:
    code: str
    kind: str
    old_code: str
    urban: bool
    region: Region  # of the old province: address style
    streets: tuple[str, ...]
    hamlets: int
    hamlet_word: WeightedTable[str]
    alley_share: float
    ethnicity: WeightedTable[str]
    local_origin: WeightedTable[str]
    local_facilities: tuple[str, ...]
    default_facility: str | None


class _Member:
    """A household member being planned; becomes a :class:`Person`."""

    __slots__ = (
        "age",
        "birth_date",
        "death_date",
        "ethnicity",
        "family",
        "line",
        "link",
        "origin",
        "person",
        "role",
        "sex",
        "twin",
    )

    def __init__(self, role: int, sex: int, age: int, line: int, link: int = -1) -> None:
        self.role = role
        self.sex = sex
        self.age = age
        self.line = line
        self.link = link  # index of the related member: mother of a child, child of a grandparent
        self.twin = -1
        self.origin = ""
        self.ethnicity = "01"
        self.family = ""
        self.birth_date: date | None = None
        self.death_date: date | None = None
        self.person: Person | None = None


class _Generator:
    """One run of :func:`generate_people`; holds the random stream, tables and counters."""

    def __init__(self, config: PopulationConfig, facilities: Sequence[Facility]) -> None:
        if config.people < 0:
            raise ValueError("people must not be negative")
        if config.days <= 0:
            raise ValueError("days must be positive")
        if not 0.0 <= config.twin_rate <= 1.0:
            raise ValueError("twin_rate must be between 0 and 1")
        province = units.province(config.province_code)
        if province is None:
            raise ValueError(f"unknown current province code {config.province_code!r}")
        self.config = config
        self.province_code = province.code
        self.rng = random.Random(config.seed)
        self.rand = self.rng.random
        self.names = NameSampler(self.rng, config.common_name_boost)
        self.demo = d = _demography()
        self.years = config.days / 365.25
        self.start = config.start
        self.start_ord = config.start.toordinal()

        households = load_data("households.json")
        self.hh = households
        self.types = WeightedTable((k, v["probability"]) for k, v in households["types"].items())
        self.type_profiles = {
            k: _profile(v["profile"], d.max_age) for k, v in households["types"].items()
        }
        self.child_counts = {
            k: _count_table(v["children"])
            for k, v in households["types"].items()
            if "children" in v
        }
        self.grandparent_counts = _count_table(
            households["types"]["three_generation"]["grandparents"]
        )
        gap = households["spouse_age_gap"]
        self.gap_mean = float(gap["mean"])
        self.spouse_kernel = tuple(
            math.exp(-((k - 60) ** 2) / (2 * gap["sd"] ** 2)) for k in range(121)
        )
        self.wife_younger_max = int(gap["wife_younger_max"])
        self.wife_older_max = int(gap["wife_older_max"])
        self.mother_gap = tuple(households["mother_age_at_birth"])
        self.father_gap = tuple(households["father_age_at_birth"])
        self.child_max_age = int(households["coresident_child_max_age"])

        bhyt = load_data("bhyt.json")
        self.bhyt = bhyt
        self.levels: dict[str, int] = bhyt["benefit_levels"]
        occupations = load_data("occupations.json")
        self.occupation_tables = {
            area: WeightedTable.of(dist)
            for area, dist in occupations["employed_distribution"].items()
        }
        self.not_working = occupations["not_working_share"]
        self.employer = occupations["insurance_by_occupation"]

        # Per-age birth-date ranges: age a on the start date ⇔ born after start − (a + 1) years
        # and on or before start − a years; residents are born before the start, babies from it.
        self.birth_range: list[tuple[int, int]] = []
        for a in range(d.max_age + 1):
            latest = _years_before(config.start, a).toordinal() - (a == 0)
            earliest = _years_before(config.start, a + 1).toordinal() + 1
            self.birth_range.append((earliest, latest - earliest + 1))
        self.death_probability = tuple(1.0 - math.exp(-rate * self.years) for rate in d.death_rate)

        self._setup_origins()
        self._setup_communes(facilities)

        # Counters: the only state that grows with the run, and it is bounded.
        self.cell_counts = [0] * (2 * _BANDS)
        self.residents = 0
        self.births = 0
        self.people_out = 0
        self.uninsured = 0
        self.households_out = 0
        base = config.seed * 1_000_003
        self.cccd_serials = _Serials(1_000, 1_000, base + 1)  # CCCD digits 7–12
        self.bhxh_serials = _Serials(10_000, 10_000, base + 2)  # BHXH digits 3–10
        self.cmnd_serials = _Serials(10_000, 100_000, base + 3)  # 9-digit CMND
        self.phone_serials = _Serials(len(_MOBILE_PREFIXES) * 1_000, 10_000, base + 4)

        # Birth rate: the schedule's level if every woman had a partner, corrected for the
        # share of women who do (about 0.6 in this household model); steering does the rest.
        schedule = sum(d.target[2 * b + 1] * d.asfr[b] for b in range(_BANDS))
        self.birth_scale = d.crude_birth_rate / schedule / 0.6

    # ------------------------------------------------------------------ setup

    def _setup_origins(self) -> None:
        """Where births were registered: locals mostly in their commune's old province, migrants
        in any other old province, weighted by population and (×3) by the same region."""
        data = load_data("provinces.json")
        old = data["old_provinces"]
        self.old_region: dict[str, Region] = {code: old[code]["region"] for code in old}
        merged = merged_old_provinces(self.province_code)
        self.merged = frozenset(merged)
        own_share = float(data["local_own_old_province_share"])
        pops = {code: float(old[code]["population_k"]) for code in old}
        merged_pop = sum(pops[c] for c in merged)
        self.local_tables: dict[str, WeightedTable[str]] = {}
        for code in merged:
            self.local_tables[code] = WeightedTable(
                (c, (own_share if c == code else 0.0) + (1 - own_share) * pops[c] / merged_pop)
                for c in merged
            )
        home_regions = {self.old_region[c] for c in merged}
        factor = float(data["migrant_same_region_factor"])
        self.migrant_origin = WeightedTable(
            (c, pops[c] * (factor if self.old_region[c] in home_regions else 1.0))
            for c in PROVINCE_CODES_63
            if c not in self.merged
        )
        shares = data["migrant_share"]
        self.migrant_share = float(shares["by_province"].get(self.province_code, shares["default"]))

    def _setup_communes(self, facilities: Sequence[Facility]) -> None:
        """Commune weights (phường heavier, lognormal spread, đặc khu small), address tables,
        ethnicity mixes and registration facilities — the only per-commune state."""
        rand = self.rand
        addresses = load_data("addresses.json")
        streets = addresses["streets"]
        s_lo, s_hi = addresses["streets_per_commune"]
        h_lo, h_hi = addresses["hamlets_per_commune"]
        hamlet_words = {r: WeightedTable.of(w) for r, w in addresses["hamlet_words"].items()}
        special_word = WeightedTable([(addresses["special_zone_word"], 1.0)])

        eth = load_data("ethnicity.json")
        shares: dict[str, float] = eth["provinces"].get(self.province_code, {})
        urban_factor = float(eth["urban_minority_factor"])

        pairs = _commune_old_codes(self.province_code)
        weights = [
            _COMMUNE_KIND_WEIGHT.get(c.kind, 1.0) * self.rng.lognormvariate(0.0, _COMMUNE_SIGMA)
            for c, _ in pairs
        ]
        urban_weight = sum(
            w for (c, _), w in zip(pairs, weights, strict=True) if c.kind == "phường"
        )
        urban_share = urban_weight / sum(weights)
        rural_factor = (1 - urban_factor * urban_share) / max(1e-9, 1 - urban_share)

        def ethnicity_table(urban: bool) -> WeightedTable[str]:
            mix: dict[str, float] = {}
            for code, pct in shares.items():
                f = 1.0 if code == "04" else (urban_factor if urban else rural_factor)
                mix[code] = pct * f
            scale = min(1.0, 99.0 / sum(mix.values())) if mix else 1.0
            mix = {k: v * scale for k, v in mix.items()}
            return WeightedTable([("01", 100.0 - sum(mix.values())), *mix.items()])

        eth_urban, eth_rural = ethnicity_table(True), ethnicity_table(False)

        ordered = sorted(facilities, key=lambda f: f.code)  # input order must not matter
        pool = [f for f in ordered if f.province_code == self.province_code] or ordered
        self.provincial = tuple(
            f.code
            for f in pool
            if f.level in ("medical_centre", "provincial_hospital", "regional_hospital")
        ) or tuple(f.code for f in pool)
        by_commune: dict[str, list[str]] = {}
        for f in pool:
            if f.level in ("commune_station", "medical_centre"):
                by_commune.setdefault(f.commune_code, []).append(f.code)
        centres = tuple(f.code for f in pool if f.level == "medical_centre") or self.provincial

        self.communes: list[_Commune] = []
        alley = addresses["alley_share"]
        for commune, old_code in pairs:
            region = self.old_region[old_code]
            urban = commune.kind == "phường"
            count = s_lo + int(rand() * (s_hi - s_lo + 1))
            picked = tuple(self.rng.sample(streets, count))
            default = centres[int(rand() * len(centres))] if centres else None
            self.communes.append(
                _Commune(
                    code=commune.code,
                    kind=commune.kind,
                    old_code=old_code,
                    urban=urban,
                    region=region,
                    streets=picked,
                    hamlets=h_lo + int(rand() * (h_hi - h_lo + 1)),
                    hamlet_word=special_word if commune.kind == "đặc khu" else hamlet_words[region],
                    alley_share=float(alley[region]),
                    ethnicity=eth_urban if urban else eth_rural,
                    local_origin=self.local_tables[old_code],
                    local_facilities=tuple(sorted(by_commune.get(commune.code, ()))),
                    default_facility=default,
                )
            )
        self.commune_table = WeightedTable(zip(range(len(self.communes)), weights, strict=True))

    # ------------------------------------------------------------------ age draws

    def _steer(self, cell: int) -> float:
        """>1 for cells behind their census share, <1 for cells ahead of it.

        The 8th power makes the correction firm: a cell 10% ahead gets less than half its
        weight, which is what it takes to undo the pull of family age windows."""
        ratio = (self.demo.target[cell] * self.residents + _STEER_K) / (
            self.cell_counts[cell] + _STEER_K
        )
        return min(25.0, ratio**8)

    def _draw_age(
        self,
        sexes: tuple[int, ...],
        lo: int,
        hi: int,
        profile: tuple[float, ...] | None = None,
        optional: bool = False,
    ) -> tuple[int, int] | None:
        """(sex, age) with ``lo <= age <= hi``, by census share × steering × profile.

        An ``optional`` member (a child, a grandparent) is left out — None — with a probability
        that grows as every cell of the window gets ahead of its target: a young mother's
        window holds only small children, and without this they would pile up.
        """
        d = self.demo
        hi = min(hi, d.max_age)
        if lo > hi:
            return None
        b0, b1 = d.band_of_age[lo], d.band_of_age[hi]
        options: list[tuple[float, int, int, int, int]] = []
        total = 0.0
        plain = 0.0
        for sex in sexes:
            prefix = d.prefix[sex]
            for b in range(b0, b1 + 1):
                a0 = max(lo, d.band_lo[b])
                a1 = min(hi, d.band_hi[b])
                w = prefix[a1 + 1] - prefix[a0]
                if profile is not None:
                    w *= profile[a0]
                plain += w
                w *= self._steer(2 * b + sex)
                if w > 0.0:
                    total += w
                    options.append((total, sex, b, a0, a1))
        if not options or (optional and self.rand() * plain > total):
            return None
        u = self.rand() * total
        chosen = options[-1]
        for option in options:
            if u < option[0]:
                chosen = option
                break
        _, sex, b, a0, a1 = chosen
        if b < _BANDS - 1:
            age = a0 + int(self.rand() * (a1 - a0 + 1))
        else:  # open band: follow its decaying single-age shares
            prefix = d.prefix[sex]
            x = prefix[a0] + self.rand() * (prefix[a1 + 1] - prefix[a0])
            age = min(a1, max(a0, bisect(prefix, x) - 1))
        return sex, age

    def _draw_spouse_age(self, sex: int, partner_age: int, lo: int = 0, hi: int = 200) -> int:
        """Age of a spouse: near the partner's age minus the usual gap (wife younger), inside
        [lo, hi], steered like every other draw. -1 when no age fits."""
        d = self.demo
        if sex == _FEMALE:
            center = partner_age - self.gap_mean
            lo = max(lo, 18, partner_age - self.wife_younger_max)
            hi = min(hi, d.max_age, partner_age + self.wife_older_max)
        else:
            center = partner_age + self.gap_mean
            lo = max(lo, 18, partner_age - self.wife_older_max)
            hi = min(hi, d.max_age, partner_age + self.wife_younger_max)
        if lo > hi:
            return -1
        share = d.age_share[sex]
        kernel = self.spouse_kernel
        band_of = d.band_of_age
        steer: dict[int, float] = {}
        cumulative: list[float] = []
        total = 0.0
        for a in range(lo, hi + 1):
            b = band_of[a]
            s = steer.get(b)
            if s is None:
                s = steer[b] = self._steer(2 * b + sex)
            total += share[a] * s * kernel[min(120, max(0, int(a - center + 60.5)))]
            cumulative.append(total)
        if total <= 0.0:
            return -1
        return lo + min(hi - lo, bisect(cumulative, self.rand() * total))

    def _count(self, sex: int, age: int) -> None:
        self.cell_counts[2 * self.demo.band_of_age[age] + sex] += 1
        self.residents += 1

    # ------------------------------------------------------------------ household plan

    def _plan(self, capacity: int) -> list[_Member]:
        """Members of one household (ages at the start date), head first."""
        rand = self.rand
        kind = self.types.draw(rand())
        spec = self.hh["types"][kind]
        minimum = {"single": 1, "single_parent": 2, "three_generation": 3}.get(kind, 2)
        if minimum > capacity:
            kind, spec = "single", self.hh["types"]["single"]
        lo, hi = spec["anchor_ages"]
        profile = self.type_profiles[kind]
        members: list[_Member] = []

        if kind == "single":
            sex, age = self._anchor((_MALE, _FEMALE), lo, hi, profile)
            self._count(sex, age)
            return [_Member(_SINGLE, sex, age, _OWN)]

        if kind == "single_parent":
            sex = _FEMALE if rand() < spec["female_parent"] else _MALE
            _, age = self._anchor((sex,), lo, hi, profile)
            self._count(sex, age)
            members.append(_Member(_PARENT, sex, age, _LINE_F if sex == _MALE else _OWN))
            self._add_children(members, 0, spec, capacity, kind)
            return members

        _, h_age = self._anchor((_MALE,), lo, hi, profile)
        w_age = self._draw_spouse_age(_FEMALE, h_age)
        self._count(_MALE, h_age)
        members.append(_Member(_HEAD, _MALE, h_age, _LINE_F))
        if w_age < 0:
            return members
        self._count(_FEMALE, w_age)
        members.append(_Member(_SPOUSE, _FEMALE, w_age, _LINE_W))
        if kind == "couple":
            return members
        self._add_children(members, 1, spec, capacity, kind)
        if kind == "three_generation":
            self._add_grandparents(members, spec, capacity)
        return members

    def _anchor(
        self, sexes: tuple[int, ...], lo: int, hi: int, profile: tuple[float, ...]
    ) -> tuple[int, int]:
        """The household's first adult: always drawn (its window is wide)."""
        drawn = self._draw_age(sexes, lo, hi, profile)
        if drawn is None:  # pragma: no cover - the data's anchor windows are never empty
            raise ValueError(f"empty anchor age window {lo}-{hi}")
        return drawn

    def _add_children(
        self, members: list[_Member], parent: int, spec: dict[str, Any], capacity: int, kind: str
    ) -> None:
        """Children of ``members[parent]`` (the mother, or a lone father), ages compatible with
        both parents; some are twins of the previous child."""
        rand = self.rand
        wanted = self.child_counts[kind].draw(rand())
        room = min(capacity, self.hh["max_size"]) - len(members)
        if kind == "three_generation":
            room -= 1  # keep a place for a grandparent
        wanted = min(wanted, room)
        p = members[parent]
        gap = self.mother_gap if p.sex == _FEMALE else self.father_gap
        lo = max(int(spec.get("child_min_age", 0)), p.age - gap[1])
        hi = min(self.child_max_age, p.age - gap[0])
        if parent == 1:  # a father is present too
            lo = max(lo, members[0].age - self.father_gap[1])
            hi = min(hi, members[0].age - self.father_gap[0])
        slots = wanted
        while slots > 0:
            slots -= 1
            drawn = self._draw_age((_MALE, _FEMALE), lo, hi, optional=True)
            if drawn is None:
                continue
            sex, age = drawn
            self._count(sex, age)
            members.append(_Member(_CHILD, sex, age, _LINE_F, parent))
            if slots > 0 and rand() < self.config.twin_rate:
                slots -= 1
                twin_sex = _MALE if rand() < self.demo.male_birth_probability else _FEMALE
                self._count(twin_sex, age)
                twin = _Member(_CHILD, twin_sex, age, _LINE_F, parent)
                twin.twin = len(members) - 1
                members[-1].twin = len(members)
                members.append(twin)

    def _add_grandparents(
        self, members: list[_Member], spec: dict[str, Any], capacity: int
    ) -> None:
        """The husband's parents (or, less often, the wife's): one or both."""
        rand = self.rand
        room = min(capacity, self.hh["max_size"]) - len(members)
        wanted = min(self.grandparent_counts.draw(rand()), room)
        if wanted <= 0:
            return
        link = 1 if rand() < spec["wife_side"] else 0
        child_age = members[link].age
        line = _LINE_W if link == 1 else _LINE_F
        f_lo, f_hi = child_age + self.father_gap[0], child_age + self.father_gap[1]
        m_lo, m_hi = child_age + self.mother_gap[0], child_age + self.mother_gap[1]
        if wanted == 2:
            drawn = self._draw_age((_MALE,), f_lo, f_hi, optional=True)
            if drawn is not None:
                gf_age = drawn[1]
                gm_age = self._draw_spouse_age(_FEMALE, gf_age, m_lo, m_hi)
                self._count(_MALE, gf_age)
                members.append(_Member(_GRANDPARENT, _MALE, gf_age, line, link))
                if gm_age >= 0:
                    self._count(_FEMALE, gm_age)
                    members.append(_Member(_GRANDPARENT, _FEMALE, gm_age, _OWN, link))
                return
        if rand() < spec["lone_grandparent_female"]:
            drawn = self._draw_age((_FEMALE,), m_lo, m_hi, optional=True)
            if drawn is not None:
                self._count(_FEMALE, drawn[1])
                members.append(_Member(_GRANDPARENT, _FEMALE, drawn[1], _OWN, link))
        else:
            drawn = self._draw_age((_MALE,), f_lo, f_hi, optional=True)
            if drawn is not None:
                self._count(_MALE, drawn[1])
                members.append(_Member(_GRANDPARENT, _MALE, drawn[1], line, link))

    # ------------------------------------------------------------------ people

    def run(self) -> Iterator[Person]:
        remaining = self.config.people
        while remaining > 0:
            people, residents = self._household(remaining)
            remaining -= residents
            yield from people

    def _origin(self, commune: _Commune) -> str:
        if self.rand() < self.migrant_share:
            return self.migrant_origin.draw(self.rand())
        return commune.local_origin.draw(self.rand())

    def _household(self, capacity: int) -> tuple[list[Person], int]:
        rand = self.rand
        commune = self.communes[self.commune_table.draw(rand())]
        members = self._plan(capacity)
        self.households_out += 1
        household_id = f"H{self.households_out:07d}"
        address = self._address(commune)
        near_poor = rand() < self.hh["near_poor_household_share"]

        # Origins and ethnicity: the head's, then spouses and descendants follow.
        for i, m in enumerate(members):
            if m.role in (_HEAD, _SINGLE, _PARENT):
                m.origin = self._origin(commune)
                m.ethnicity = commune.ethnicity.draw(rand())
            elif m.role == _SPOUSE:
                head = members[0]
                same = rand() < self.hh["same_origin_spouse"]
                m.origin = head.origin if same else self._origin(commune)
                m.ethnicity = (
                    head.ethnicity
                    if rand() < self.hh["same_ethnicity_spouse"]
                    else commune.ethnicity.draw(rand())
                )
            elif m.role == _CHILD:
                parent = members[m.link]
                local = rand() < self.hh["child_born_locally"]
                m.origin = commune.local_origin.draw(rand()) if local else parent.origin
                m.ethnicity = members[0].ethnicity
                if m.twin >= 0 and m.twin < i:
                    m.origin = members[m.twin].origin
            else:  # grandparent
                linked = members[m.link]
                same = rand() < self.hh["grandparent_same_origin"]
                m.origin = linked.origin if same else commune.local_origin.draw(rand())
                m.ethnicity = linked.ethnicity

        # Birth dates, names, identifiers.
        family_f = ""
        family_w = ""
        people: list[Person] = []
        for m in members:
            if m.twin >= 0 and members[m.twin].birth_date is not None:
                m.birth_date = members[m.twin].birth_date
            else:
                earliest, span = self.birth_range[m.age]
                m.birth_date = date.fromordinal(earliest + int(rand() * span))
            year = m.birth_date.year
            sex: Sex = _SEXES[m.sex]
            region = self.old_region[m.origin]
            if m.line == _LINE_F and family_f:
                family = family_f
                middle, given = self.names.middle_and_given(sex, year)
            elif m.line == _LINE_W and family_w:
                family = family_w
                middle, given = self.names.middle_and_given(sex, year)
            elif m.line == _LINE_F and m.role == _CHILD:  # the father does not live here
                mother = members[m.link]
                family = family_f = self.names.family_name(
                    self.old_region[mother.origin], mother.ethnicity
                )
                middle, given = self.names.middle_and_given(sex, year)
            else:
                family, middle, given = self.names.full_name(sex, year, region, m.ethnicity)
                if m.line == _LINE_F:
                    family_f = family
                elif m.line == _LINE_W:
                    family_w = family
            m.family = family
            m.person = self._person(
                household_id, commune, address, m, family, middle, given, near_poor
            )
            people.append(m.person)
        for m in members:
            if m.twin >= 0:
                twin = members[m.twin].person
                assert m.person is not None and twin is not None
                m.person.twin_of = twin.person_id

        # Deaths and births during the period.
        days = self.config.days
        for m in members:
            if rand() < self.death_probability[2 * self.demo.band_of_age[m.age] + m.sex]:
                m.death_date = self.start + timedelta(days=int(rand() * days))
        babies = self._births(members, commune, household_id, address)
        for m in members:
            assert m.person is not None
            m.person.death_date = m.death_date
        return people + babies, len(members)

    def _address(self, commune: _Commune) -> str:
        """House number and street in a ward; hamlet or residential group elsewhere."""
        rand = self.rand
        if commune.urban:
            street = commune.streets[int(rand() * len(commune.streets))]
            number = 1 + int(rand() ** 1.7 * 400)
            if rand() < commune.alley_share:
                alley = 1 + int(rand() ** 1.5 * 200)
                if commune.region == "north":
                    return f"Số {number} ngõ {alley} {street}"
                return f"{alley}/{number} {street}"
            return f"Số {number} {street}" if commune.region == "north" else f"{number} {street}"
        word = commune.hamlet_word.draw(rand())
        return f"{word} {1 + int(rand() * commune.hamlets)}"

    def _person(
        self,
        household_id: str,
        commune: _Commune,
        address: str,
        m: _Member,
        family: str,
        middle: str,
        given: str,
        near_poor: bool,
        *,
        birth_time: time | None = None,
        mother_id: str | None = None,
    ) -> Person:
        rand = self.rand
        assert m.birth_date is not None
        sex: Sex = _SEXES[m.sex]
        birth_year = m.birth_date.year
        age = m.age
        self.people_out += 1

        cccd = make_cccd(
            m.origin,
            sex,
            birth_year,
            self.cccd_serials.next(int(m.origin) * 1_000_000 + birth_year * 2 + m.sex),
        )
        cmnd = None
        if birth_year < 1990 and rand() < _CMND_SHARE:
            cmnd = f"{self.cmnd_serials.next(0):09d}"
        bhxh = f"{commune.old_code}{self.bhxh_serials.next(int(commune.old_code)):08d}"

        occupation, object_code = self._occupation_and_object(m, commune, near_poor)
        card: str | None = None
        facility: str | None = None
        if object_code is not None:
            card = make_bhyt(object_code, self.levels[object_code], commune.old_code, bhxh)
            facility = self._facility(commune)

        phone = None
        p_phone = 0.0 if age < 12 else _PHONE_SHARE[0 if age < 18 else 2 if age >= 75 else 1]
        if p_phone and rand() < p_phone:
            n = self.phone_serials.next(0)
            phone = f"{_MOBILE_PREFIXES[n // 10_000_000]}{n % 10_000_000:07d}"

        return Person(
            person_id=f"P{self.people_out:08d}",
            household_id=household_id,
            family_name=family,
            middle_name=middle,
            given_name=given,
            sex=sex,
            birth_date=m.birth_date,
            birth_time=birth_time,
            birth_province_code=m.origin,
            province_code=self.province_code,
            commune_code=commune.code,
            street_address=address,
            cccd=cccd,
            cmnd=cmnd,
            bhyt_card=card,
            bhyt_registered_facility=facility,
            bhxh_number=bhxh,
            phone=phone,
            ethnicity_code=m.ethnicity,
            occupation_code=occupation,
            mother_id=mother_id,
        )

    def _occupation_and_object(
        self, m: _Member, commune: _Commune, near_poor: bool
    ) -> tuple[str, str | None]:
        """Occupation code and BHYT object code (None: uninsured), by age and situation."""
        rand = self.rand
        age = m.age
        area = "urban" if commune.urban else "rural"
        bhyt = self.bhyt
        if age < 6:
            return "00000", "TE"
        if age < 18:
            occupation, code = "00001", "HS"
        elif age <= 22 and rand() < bhyt["student_share_18_22"][area]:
            occupation, code = "00002", "SV"
        elif age >= 60:
            if rand() < bhyt["retiree_share_60_plus"][area]:
                return "00003", "HT"
            # half the rural elderly without a pension still farm
            occupation = "60000" if area == "rural" and age < 75 and rand() < 0.5 else "00004"
            code = "GD"
            if m.sex == _MALE and age >= 65 and rand() < bhyt["veteran_share_men_65_plus"]:
                return occupation, "CB"
            if age >= 80 and rand() < bhyt["social_protection_share_80_plus"]:
                return occupation, "BT"
        elif rand() < self.not_working[_SEXES[m.sex]]:
            occupation, code = "00004", "GD"
        else:
            occupation = self.occupation_tables[area].draw(rand())
            employer = self.employer[occupation]
            u = rand()
            if u < employer["HC"]:
                return occupation, "HC"
            if u < employer["HC"] + employer["DN"]:
                return occupation, "DN"
            code = "GD"
        # State-funded cards first, then the household-based ones that some people lack.
        if near_poor:
            return occupation, "CN"
        if (
            m.ethnicity not in ("01", "04")
            and not commune.urban
            and rand() < bhyt["minority_hard_area_share"]
        ):
            return occupation, "DT"
        if code == "HS":
            return occupation, code
        # Steer the uninsured towards (1 − coverage) of everyone generated so far.
        expected = (1.0 - BHYT_COVERAGE) * self.people_out + _STEER_K
        ratio = expected / (self.uninsured + _STEER_K)
        if rand() < min(0.9, 0.2 * ratio**8):
            self.uninsured += 1
            return occupation, None
        return occupation, code

    def _facility(self, commune: _Commune) -> str | None:
        """MA_DKBD: mostly the commune's own station or centre, else a provincial one."""
        rand = self.rand
        if commune.local_facilities and rand() < _LOCAL_REGISTRATION:
            local = commune.local_facilities
            return local[int(rand() * len(local))]
        if commune.default_facility is not None and rand() < _DEFAULT_CENTRE:
            return commune.default_facility
        if self.provincial:
            return self.provincial[int(rand() * len(self.provincial))]
        return None

    # ------------------------------------------------------------------ births

    def _births(
        self, members: list[_Member], commune: _Commune, household_id: str, address: str
    ) -> list[Person]:
        """Babies born during the period to the household's women with a partner (and, less
        often, single mothers); the level is steered to the crude birth rate."""
        d = self.demo
        rand = self.rand
        expected = d.crude_birth_rate * self.years * self.residents + _STEER_K
        ratio = expected / (self.births + _STEER_K)
        steer = min(10.0, max(0.1, ratio * ratio))
        babies: list[Person] = []
        for index, m in enumerate(members):
            if m.sex != _FEMALE or not 15 <= m.age <= 49 or m.role not in (_SPOUSE, _PARENT):
                continue
            children = sum(1 for c in members if c.role == _CHILD and c.link == index)
            parity = (1.2, 1.2, 0.45, 0.2)[min(children, 3)]
            if m.role == _PARENT:
                parity *= 0.3
            rate = d.asfr[d.band_of_age[m.age]] * self.birth_scale * parity * steer
            if rand() >= 1.0 - math.exp(-rate * self.years):
                continue
            offset = int(rand() * self.config.days)
            day = self.start + timedelta(days=offset)
            if m.death_date is not None and m.death_date < day:
                left = (self.start + timedelta(days=self.config.days - 1) - day).days
                m.death_date = day + timedelta(days=int(rand() * (left + 1)))
            twins = rand() < self.config.twin_rate
            babies += self._newborns(m, members, commune, household_id, address, day, twins)
        return babies

    def _newborns(
        self,
        mother: _Member,
        members: list[_Member],
        commune: _Commune,
        household_id: str,
        address: str,
        day: date,
        twins: bool,
    ) -> list[Person]:
        rand = self.rand
        d = self.demo
        father_line = members[0].role == _HEAD
        family = members[0].family if father_line else None
        if family is None:  # single mother: the (absent) father's name, shared by siblings
            siblings = [c for c in members if c.role == _CHILD]
            family = (
                siblings[0].family
                if siblings
                else self.names.family_name(self.old_region[mother.origin], mother.ethnicity)
            )
        ethnicity = members[0].ethnicity if father_line else mother.ethnicity
        minute = int(rand() * (1440 - 30))
        out: list[Person] = []
        for k in range(2 if twins else 1):
            if k:
                minute += 1 + int(rand() * 15)
            sex = _MALE if rand() < d.male_birth_probability else _FEMALE
            baby = _Member(_CHILD, sex, 0, _LINE_F)
            baby.birth_date = day
            baby.origin = commune.old_code  # birth registered where the family lives
            baby.ethnicity = ethnicity
            middle, given = self.names.middle_and_given(_SEXES[sex], day.year)
            assert mother.person is not None
            person = self._person(
                household_id,
                commune,
                address,
                baby,
                family,
                middle,
                given,
                False,
                birth_time=time(minute // 60, minute % 60),
                mother_id=mother.person.person_id,
            )
            left = self.config.days - (day.toordinal() - self.start_ord)
            rate = d.death_rate[sex] * d.first_year_mortality_factor
            if rand() < 1.0 - math.exp(-rate * left / 365.25):
                person.death_date = day + timedelta(days=int(rand() * left))
            out.append(person)
            self.births += 1
        if twins:
            out[0].twin_of, out[1].twin_of = out[1].person_id, out[0].person_id
        return out
