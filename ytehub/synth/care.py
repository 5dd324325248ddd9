"""Synthetic care: who is seen where, for what, and what the facility sends (QĐ 130/4750).

One :class:`CareModel` per province and period. :meth:`CareModel.episodes_for` turns one resident
into the treatment episodes (MA_LK) of the period, each with its rows per table as formatted
strings, ready for :func:`ytehub.formats.qd4750.render_table`. The catalogues — ICD-10 names,
drugs, services and laboratory panels, the case mix with its seasonality and utilisation rates —
live in ``ytehub/synth/data/care/*.json``; each file says how far it can be trusted.

Deliberate approximations (the ground truth is what this module produces, not reality):

* Utilisation: Poisson counts of outpatient visits and admissions per person-year by age band,
  plus roughly monthly visits for managed hypertension and diabetes. The condition of a visit is
  drawn by age band and calendar month (southern seasonality: dengue rises May–November with its
  peak August–October; hand-foot-and-mouth disease peaks March–May and September–November).
* Facilities: the registered facility (MA_DKBD) when it fits the case, otherwise the commune
  station of the person's commune, the nearest medical centre, the nearest general hospital
  (straight-line distance), or a specialised provincial hospital recognised by its name
  (children, obstetrics, tropical diseases). Private clinics see only uninsured outpatients.
* Money: catalogue prices are whole VND in multiples of 20 (40 when TYLE_TT_BH is 50), so every
  amount is exact. MUC_HUONG follows the card's benefit digit (1, 2, 5 → 100; 3 → 95; 4 → 80), is
  100 at commune stations and when the episode's in-scope total is under 15% of the base salary
  (351,000 VND); there are no other funding sources (T_NGUONKHAC = 0) and no reductions for care
  outside the network. Uninsured patients: TYLE_TT_BH 0, everything in T_BNTT.
* Outbreaks: an injected outbreak adds cases at an attack rate of extra_cases / eligible residents
  of its communes (populations from ``commune_population``, else DEFAULT_COMMUNE_POPULATION per
  commune), capped at MAX_ATTACK_RATE; the realised count therefore tracks ``extra_cases`` only as
  far as those populations are right. Neighbouring communes are approximated by adjacent codes
  (GSO numbering keeps the communes of one former district together).
* MA_LK is facility code + yyyymmdd + a five-digit sequence per facility and day kept by the model:
  deterministic for a given order of calls (and the given random generators), not across orders.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from ytehub.core import units
from ytehub.formats.qd4750 import fmt_date, fmt_datetime, fmt_money, fmt_qty
from ytehub.synth.model import Episode, Facility, Outbreak, PatientIdentity, Person, Practitioner

__all__ = [
    "DEFAULT_COMMUNE_POPULATION",
    "MAX_ATTACK_RATE",
    "CareModel",
    "births_by_mother",
    "plan_outbreaks",
]

DEFAULT_COMMUNE_POPULATION = 150  # residents per commune of the default 20,000-person province
MAX_ATTACK_RATE = 0.5
LOW_COST_LIMIT_CENTS = 351_000 * 100  # 15% of the 2,340,000 VND base salary (from 07/2024)
_DATA = "ytehub.synth.data.care"

# Minutes of the day as "HHMM", built with the format module so both agree by construction.
_HHMM = tuple(fmt_datetime(datetime(2000, 1, 1, m // 60, m % 60))[8:] for m in range(1440))
_N = tuple(str(i) for i in range(5000))
_BENEFIT = {"1": 100, "2": 100, "3": 95, "4": 80, "5": 100}  # card character 3 → MUC_HUONG
_ZERO = fmt_money(0)
_ZEROS = {
    "T_NGUONKHAC_NSNN": _ZERO,
    "T_NGUONKHAC_VTNN": _ZERO,
    "T_NGUONKHAC_VTTN": _ZERO,
    "T_NGUONKHAC_CL": _ZERO,
    "T_NGUONKHAC": _ZERO,
}
_HOSPITALS = ("provincial_hospital", "regional_hospital")
_ID_ISSUER = "Cục Cảnh sát quản lý hành chính về trật tự xã hội"
_WARD_NOTES = (
    "Bệnh tỉnh, tiếp xúc tốt. Mạch, huyết áp ổn định. Tiếp tục điều trị theo y lệnh.",
    "Bệnh tỉnh, giảm triệu chứng, ăn uống được. Tiếp tục điều trị.",
    "Toàn trạng ổn định, không sốt. Theo dõi và chăm sóc cấp III.",
)
_ADVICE = "Tái khám khi có dấu hiệu bất thường; dùng thuốc theo đơn."
# Typical weights (kg) by age in years: (male, female); infants handled by months.
_WEIGHTS = (
    (9.6, 8.9),
    (12.2, 11.5),
    (14.3, 13.9),
    (16.3, 15.9),
    (18.3, 17.9),
    (20.5, 20.2),
    (22.9, 22.4),
    (25.4, 25.0),
    (28.1, 28.2),
    (31.2, 31.9),
    (34.8, 36.0),
    (38.9, 40.5),
    (43.8, 44.0),
    (49.0, 46.5),
    (53.0, 48.0),
    (56.0, 49.0),
    (58.0, 50.0),
)


# ---------------------------------------------------------------------------------------------
# Catalogues


@dataclass(frozen=True, slots=True)
class _Drug:
    key: str
    const: dict[str, str]  # the XML2 elements that never change for this drug
    price: int  # VND per smallest unit
    tyle: int  # TYLE_TT_BH
    dose: int
    times: int
    unit: str  # lower-case unit word for LIEU_DUNG
    child: str | None
    adult_only: bool


@dataclass(frozen=True, slots=True)
class _Indicator:
    code: str
    name: str
    unit: str
    numeric: bool
    low: float
    high: float
    pattern: str  # "%.1f" …
    normal: str
    abnormal: str
    mo_ta: str  # reference range, written in MO_TA (XML4 has no element for it)


@dataclass(frozen=True, slots=True)
class _Service:
    key: str
    code: str
    name: str
    group: int  # MA_NHOM
    price: int
    const: dict[str, str]  # the XML3 elements that never change for this service
    indicators: tuple[_Indicator, ...]
    text: str  # imaging / ECG description
    conclusion: str
    pttt_qt: str  # ICD-9-CM of a procedure
    supplies: tuple[str, ...]
    performer: bool  # NGUOI_THUC_HIEN and NGAY_TH_YL required (groups 1, 2, 3, 8, 18)
    result: bool  # para-clinical: NGAY_KQ and XML4 rows


@dataclass(frozen=True, slots=True)
class _Case:
    key: str
    icd: str
    name: str
    op: tuple[float, ...]
    ip: tuple[float, ...]
    season: tuple[float, ...]
    lydo: str
    ip_lydo: str
    vao: str
    pp: str
    drugs: tuple[str, ...]
    ndrugs: tuple[int, int]
    labs: tuple[tuple[str, float], ...]
    ip_drugs: tuple[str, ...]
    ip_labs: tuple[tuple[str, float], ...]
    procs: tuple[tuple[str, float], ...]
    levels: tuple[tuple[float, str], ...]  # cumulative weights over station/centre/hospital
    ip_levels: tuple[tuple[float, str], ...]
    los: tuple[int, int]
    followup: float
    followup_days: int
    referral: float
    stay06: float
    high: frozenset[str]
    low: frozenset[str]
    positive: frozenset[str]
    findings: dict[str, str]
    secondary: tuple[tuple[str, float], ...]
    tai_nan: tuple[str, ...]
    emergency: float
    specialty: str
    chronic: bool
    tb: bool
    twins_icd: str


@dataclass(frozen=True, slots=True)
class _Catalogue:
    icd: dict[str, str]
    drugs: dict[str, _Drug]
    services: dict[str, _Service]
    supplies: dict[str, _Service]
    exam: dict[str, _Service]
    bed: dict[str, _Service]
    cases: dict[str, _Case]
    bands: tuple[tuple[int, int], ...]
    op_rate: tuple[float, ...]
    ip_rate: tuple[float, ...]
    chronic: tuple[tuple[str, tuple[float, ...]], ...]  # (case key, prevalence by band)
    chronic_interval: tuple[int, int]
    chronic_05_share: float
    birth_rate: float
    caesarean_share: float
    terminal_share: float
    clinic_share: float
    supplements: tuple[str, ...]  # supportive drugs some prescriptions add (adults)
    child_supplements: tuple[str, ...]
    supplement_share: float
    seasons: dict[str, tuple[float, ...]]
    outbreaks: dict[str, tuple[str, tuple[float, ...], float]]  # icd → (case, ages, ip share)
    terminal: tuple[tuple[float, str], ...]


def _json(name: str) -> Any:
    return json.loads(resources.files(_DATA).joinpath(name).read_text(encoding="utf-8"))


def _cumulative(weights: Mapping[str, float]) -> tuple[tuple[float, str], ...]:
    total, out = 0.0, []
    for key, weight in weights.items():
        if weight > 0:
            total += weight
            out.append((total, key))
    return tuple((cum / total, key) for cum, key in out)


def _price(price: int) -> str:
    """Unit prices carry 3 decimals (DON_GIA, DON_GIA_BV, DON_GIA_BH)."""
    return fmt_qty(price)


@cache
def _catalogue() -> _Catalogue:
    """Load and precompute the catalogues once per process (never per row)."""
    icd = _json("icd10.json")["codes"]
    raw_drugs = _json("drugs.json")
    drugs: dict[str, _Drug] = {}
    for d in raw_drugs["drugs"]:
        const = {
            "MA_THUOC": d["ma_thuoc"],
            "MA_NHOM": str(d["ma_nhom"]),
            "TEN_THUOC": d["ten_thuoc"],
            "DON_VI_TINH": d["don_vi_tinh"],
            "HAM_LUONG": d["ham_luong"],
            "DUONG_DUNG": d["duong_dung"],
            "DANG_BAO_CHE": d["dang_bao_che"],
            "CACH_DUNG": d["cach_dung"],
            "SO_DANG_KY": d["so_dang_ky"],
            "TT_THAU": raw_drugs["tender"],
            "PHAM_VI": "1",
            "DON_GIA": _price(d["don_gia"]),
            **_ZEROS,
            "MA_PTTT": "1",
            "NGUON_CTRA": "1",
        }
        drugs[d["key"]] = _Drug(
            d["key"],
            const,
            d["don_gia"],
            d["tyle_tt_bh"],
            d["dose"],
            d["times"],
            d["don_vi_tinh"].lower(),
            d.get("child"),
            bool(d.get("adult_only", False)),
        )

    raw = _json("services.json")

    def service(s: Mapping[str, Any], group: int, key: str) -> _Service:
        indicators = []
        for i in s.get("indicators", ()):
            numeric = "low" in i
            pattern = f"%.{i.get('decimals', 0)}f"
            indicators.append(
                _Indicator(
                    i["code"],
                    i["name"],
                    i.get("unit", ""),
                    numeric,
                    float(i.get("low", 0)),
                    float(i.get("high", 0)),
                    pattern,
                    i.get("normal", ""),
                    i.get("abnormal", ""),
                    (
                        f"Giá trị tham chiếu: {pattern % i['low']} - {pattern % i['high']}"
                        if numeric
                        else f"Giá trị tham chiếu: {i.get('normal', '')}"
                    ),
                )
            )
        price = s["price"]
        const = {
            "MA_NHOM": str(group),
            "DON_VI_TINH": s.get("unit", "Lần"),
            "PHAM_VI": "1",
            "DON_GIA_BV": _price(price),
            "DON_GIA_BH": _price(price),
            "TYLE_TT_DV": "100",
            **_ZEROS,
            "MA_PTTT": "1",
        }
        if group in (10, 11):
            const.update(MA_VAT_TU=s["code"], TEN_VAT_TU=s["name"], TT_THAU=raw["tender"])
        else:
            const.update(MA_DICH_VU=s["code"], TEN_DICH_VU=s["name"])
        if s.get("pttt_qt"):
            const["MA_PTTT_QT"] = s["pttt_qt"]
        if s.get("vo_cam"):
            const["PP_VO_CAM"] = s["vo_cam"]
        return _Service(
            key,
            s["code"],
            s["name"],
            group,
            price,
            const,
            tuple(indicators),
            s.get("text", ""),
            s.get("conclusion", ""),
            s.get("pttt_qt", ""),
            tuple(s.get("supplies", ())),
            group in (1, 2, 3, 8, 18),
            group in (1, 2, 3),
        )

    services = {s["key"]: service(s, s["ma_nhom"], s["key"]) for s in raw["services"]}
    supplies = {s["key"]: service(s, s["ma_nhom"], s["key"]) for s in raw["supplies"]}
    exam = {level: service(s, 13, "EXAM") for level, s in raw["exam"].items()}
    bed = {level: service(s, s["ma_nhom"], "BED") for level, s in raw["bed"].items()}

    cfg = _json("cases.json")
    seasons = {name: tuple(float(x) for x in values) for name, values in cfg["seasons"].items()}
    cases: dict[str, _Case] = {}
    for key, c in cfg["cases"].items():
        if c["icd"] not in icd:
            raise ValueError(f"case {key}: ICD-10 code {c['icd']} has no name in icd10.json")
        for k in (*c.get("drugs", ()), *c.get("ip_drugs", ())):
            if k not in drugs:
                raise ValueError(f"case {key}: unknown drug {k}")
        for k, _ in (*c.get("labs", ()), *c.get("ip_labs", ()), *c.get("procs", ())):
            if k not in services:
                raise ValueError(f"case {key}: unknown service {k}")
        for code, _ in c.get("secondary", ()):
            if code not in icd:
                raise ValueError(f"case {key}: secondary ICD-10 code {code} has no name")
        levels = c.get("levels", {"station": 0.5, "centre": 0.35, "hospital": 0.15})
        cases[key] = _Case(
            key=key,
            icd=c["icd"],
            name=icd[c["icd"]],
            op=tuple(float(x) for x in c.get("op", (0,) * 6)),
            ip=tuple(float(x) for x in c.get("ip", (0,) * 6)),
            season=seasons[c.get("season", "flat")],
            lydo=c["lydo"],
            ip_lydo=c.get("ip_lydo", c["lydo"]),
            vao=c.get("vao", ""),
            pp=c.get("pp", "Điều trị nội khoa"),
            drugs=tuple(c.get("drugs", ())),
            ndrugs=(c.get("ndrugs", (2, 3))[0], c.get("ndrugs", (2, 3))[1]),
            labs=tuple((k, float(p)) for k, p in c.get("labs", ())),
            ip_drugs=tuple(c.get("ip_drugs", c.get("drugs", ()))),
            ip_labs=tuple((k, float(p)) for k, p in c.get("ip_labs", c.get("labs", ()))),
            procs=tuple((k, float(p)) for k, p in c.get("procs", ())),
            levels=_cumulative(levels),
            ip_levels=_cumulative(c.get("ip_levels", {"centre": 0.5, "hospital": 0.5})),
            los=(c.get("los", (3, 6))[0], c.get("los", (3, 6))[1]),
            followup=float(c.get("followup", 0.0)),
            followup_days=int(c.get("followup_days", 7)),
            referral=float(c.get("referral", 0.0)),
            stay06=float(c.get("stay06", 0.0)),
            high=frozenset(c.get("high", ())),
            low=frozenset(c.get("low", ())),
            positive=frozenset(c.get("positive", ())),
            findings=dict(c.get("findings", {})),
            secondary=tuple((k, float(p)) for k, p in c.get("secondary", ())),
            tai_nan=tuple(c.get("tai_nan", ())),
            emergency=float(c.get("emergency", 0.0)),
            specialty=c.get("specialty", ""),
            chronic=bool(c.get("chronic", False)),
            tb=bool(c.get("tb", False)),
            twins_icd=c.get("twins_icd", c["icd"]),
        )
    by_icd = {case.icd: case.key for case in cases.values() if case.chronic}
    outbreaks = {
        code: (o["case"], tuple(float(x) for x in o["ages"]), float(o["ip_share"]))
        for code, o in cfg["outbreaks"].items()
    }
    return _Catalogue(
        icd=icd,
        drugs=drugs,
        services=services,
        supplies=supplies,
        exam=exam,
        bed=bed,
        cases=cases,
        bands=tuple((lo, hi) for lo, hi in cfg["bands"]),
        op_rate=tuple(cfg["outpatient_per_year"]),
        ip_rate=tuple(cfg["inpatient_per_year"]),
        chronic=tuple(
            (by_icd[code], tuple(float(x) for x in prevalence))
            for code, prevalence in cfg["chronic_prevalence"].items()
        ),
        chronic_interval=(
            cfg["chronic_visit_interval_days"][0],
            cfg["chronic_visit_interval_days"][1],
        ),
        chronic_05_share=float(cfg["chronic_05_share"]),
        birth_rate=float(cfg["births_per_woman_year"]),
        caesarean_share=float(cfg["caesarean_share"]),
        terminal_share=float(cfg["terminal_admission_share"]),
        clinic_share=float(cfg["uninsured_private_clinic_share"]),
        supplements=tuple(cfg["supplements"]["drugs"]),
        child_supplements=tuple(cfg["supplements"]["child_drugs"]),
        supplement_share=float(cfg["supplements"]["share"]),
        seasons=seasons,
        outbreaks=outbreaks,
        terminal=_cumulative(cfg["terminal"]),
    )


def _money(cents: int) -> str:
    """Money from whole cents; the common whole-VND case takes the formatter's integer path."""
    if cents % 100 == 0:
        return fmt_money(cents // 100)
    return fmt_money(Decimal(cents).scaleb(-2))


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw by multiplication of uniforms (small means), normal beyond 30."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(lam + math.sqrt(lam) * rng.gauss(0.0, 1.0) + 0.5))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _pick(cumulative: Sequence[tuple[float, str]], r: float) -> str:
    for cum, key in cumulative:
        if r < cum:
            return key
    return cumulative[-1][1]


# ---------------------------------------------------------------------------------------------
# Outbreak planning


_OUTBREAK_KINDS = {  # disease → (ICD-10 choices, season profile)
    "dengue": (("A91", "A90"), "dengue"),
    "hfmd": (("B08.4",), "hfmd"),
    "measles": (("B05.9",), "measles"),
}


def plan_outbreaks(
    province_code: str,
    communes: Sequence[str],
    start: date,
    days: int,
    rng: random.Random,
) -> list[Outbreak]:
    """Two to four local outbreaks to inject: dengue and hand-foot-and-mouth disease always,
    measles or a second dengue cluster sometimes.

    Each covers 2–5 neighbouring communes (adjacent codes in GSO order — communes of one former
    district are numbered together) for 3–6 weeks with 30–150 extra cases, starting at a time
    weighted by the disease's seasonal profile within the period.
    """
    codes = sorted(set(communes))
    if not codes or days < 14:
        return []
    seasons = _catalogue().seasons
    kinds = ["dengue", "hfmd"]
    if rng.random() < 0.6:
        kinds.append("measles" if rng.random() < 0.5 else "dengue")
    if rng.random() < 0.3:
        kinds.append("dengue")
    first = start.toordinal()
    outbreaks = []
    for index, kind in enumerate(kinds, start=1):
        icds, season_name = _OUTBREAK_KINDS[kind]
        season = seasons[season_name]
        icd = icds[0] if len(icds) == 1 or rng.random() < 0.7 else icds[1]
        duration = min(days, 21 + int(rng.random() * 22))
        size = min(len(codes), 2 + int(rng.random() * 4))
        at = int(rng.random() * (len(codes) - size + 1))
        cluster = tuple(codes[at : at + size])
        offsets = range(days - duration + 1)
        weights = [  # squared: outbreaks cluster in the high season more than single cases
            season[date.fromordinal(first + off + duration // 2).month - 1] ** 2 for off in offsets
        ]
        cumulative, total = [], 0.0
        for weight in weights:
            total += weight
            cumulative.append(total)
        offset = bisect.bisect_right(cumulative, rng.random() * total)
        offset = min(offset, len(weights) - 1)
        begin = date.fromordinal(first + offset)
        outbreaks.append(
            Outbreak(
                outbreak_id=f"OB{province_code}-{begin:%Y%m%d}-{index}",
                icd10=icd,
                communes=cluster,
                start=begin,
                end=begin + timedelta(days=duration - 1),
                extra_cases=30 + int(rng.random() * 121),
            )
        )
    return outbreaks


def births_by_mother(people: Iterable[Person]) -> dict[str, list[Person]]:
    """Children with a known mother, grouped by the mother's ``person_id`` (for ``births``)."""
    found: dict[str, list[Person]] = {}
    for person in people:
        if person.mother_id:
            found.setdefault(person.mother_id, []).append(person)
    return found


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True, slots=True)
class _Staff:
    everyone: tuple[Practitioner, ...]
    outpatient: tuple[Practitioner, ...]  # the examination department (K01) when it has staff
    inpatient: tuple[Practitioner, ...]  # everyone else (wards), else everyone
    head: str  # MA_TTDV: BHXH number of the person signing for the facility


@dataclass(frozen=True, slots=True)
class _Menu:
    """The facilities one person would use, by kind."""

    station: Facility | None
    centre: Facility | None
    hospital: Facility | None
    registered: Facility | None
    clinic: Facility | None


@dataclass(frozen=True, slots=True)
class _Child:
    sex: str
    minute: int  # absolute minute of birth (ordinal * 1440 + minute of day)
    name: str
    bhxh: str
    grams: int


@dataclass(frozen=True, slots=True)
class _OutbreakPlan:
    outbreak: Outbreak
    case: _Case
    ages: tuple[float, ...]
    ip_share: float
    rate: float  # per-person attack rate for an age weight of 1
    first: int  # ordinal of the first day
    span: int  # days


_Table = tuple[list[float], list[_Case]]  # cumulative weights and the cases they select


def _fold(text: str) -> str:
    return units.fold(text)


class CareModel:
    """Care episodes of one province over ``days`` days from ``start``.

    ``births`` optionally maps a mother's ``person_id`` to her children born in the period (see
    :func:`births_by_mother`); a woman listed there delivers exactly on her children's birth
    dates (one XML9 row per child). Without it, deliveries of women 18–45 are drawn at random
    and their newborns appear only in XML9. ``commune_population`` — residents per commune code,
    or one average for every commune — turns outbreak sizes into attack rates (default
    DEFAULT_COMMUNE_POPULATION, which suits only populations of that density).
    """

    def __init__(
        self,
        facilities: Sequence[Facility],
        practitioners: Sequence[Practitioner],
        start: date,
        days: int,
        outbreaks: Sequence[Outbreak] = (),
        *,
        births: Mapping[str, Sequence[Person]] | None = None,
        commune_population: Mapping[str, int] | float | None = None,
    ) -> None:
        if days < 1:
            raise ValueError("days must be at least 1")
        self.start = start
        self.days = days
        self.outbreaks = tuple(outbreaks)
        self._cat = _catalogue()
        self._first = start.toordinal()
        self._last = self._first + days - 1
        self._births = births
        self._day_text: dict[int, str] = {}
        self._seq: dict[tuple[str, int], int] = {}
        self._doc_seq: dict[tuple[str, str], int] = {}
        self._lieu: dict[tuple[str, int], str] = {}
        self._menus: dict[tuple[str, str | None], _Menu] = {}

        grouped: dict[str, list[Practitioner]] = {}
        for practitioner in practitioners:
            grouped.setdefault(practitioner.facility_code, []).append(practitioner)
        self._staff: dict[str, _Staff] = {}
        for code, staff in grouped.items():
            staff.sort(key=lambda p: p.practitioner_id)
            exam = tuple(p for p in staff if p.department_code == "K01")
            wards = tuple(p for p in staff if p.department_code != "K01")
            self._staff[code] = _Staff(
                tuple(staff), exam or tuple(staff), wards or tuple(staff), staff[0].bhxh_number
            )
        self._facilities = [f for f in facilities if f.code in self._staff]
        if not self._facilities:
            raise ValueError("no facility has practitioners")
        self._by_code = {f.code: f for f in self._facilities}
        self._stations: dict[str, Facility] = {}
        for f in self._facilities:
            if f.level == "commune_station":
                self._stations.setdefault(f.commune_code, f)
        self._centres = [f for f in self._facilities if f.level == "medical_centre"]
        hospitals = [f for f in self._facilities if f.level in _HOSPITALS]
        general = [f for f in hospitals if "da khoa" in _fold(f.name)]
        self._general = general or hospitals
        self._clinics = [f for f in self._facilities if f.level == "private_clinic"]
        self._special: dict[str, list[Facility]] = {
            "children": [],
            "obstetric": [],
            "infectious": [],
        }
        for f in hospitals:  # specialised hospitals, recognised by their names
            name = _fold(f.name)
            if "da khoa" in name:
                continue
            words = name.replace("–", " ").replace("-", " ").split()
            if "nhi" in words:
                self._special["children"].append(f)
            if "san" in words:
                self._special["obstetric"].append(f)
            if "nhiet doi" in name or "truyen nhiem" in name or "benh vien phoi" in name:
                self._special["infectious"].append(f)

        self._op_tables, self._ip_tables = self._case_tables()
        self._plans: dict[str, list[_OutbreakPlan]] = {}
        shares = (0.075, 0.155, 0.45, 0.18, 0.1, 0.04)  # approximate age structure, 6 bands
        for outbreak in self.outbreaks:
            spec = self._cat.outbreaks.get(outbreak.icd10) or next(
                (v for k, v in self._cat.outbreaks.items() if k.startswith(outbreak.icd10)), None
            )  # "B05" → the B05.9 case
            if spec is None:
                raise ValueError(f"outbreak {outbreak.outbreak_id}: no case for {outbreak.icd10}")
            case_key, ages, ip_share = spec
            if commune_population is None or isinstance(commune_population, int | float):
                each = float(commune_population or DEFAULT_COMMUNE_POPULATION)
                population = each * len(outbreak.communes)
            else:
                population = sum(
                    commune_population.get(c, DEFAULT_COMMUNE_POPULATION) for c in outbreak.communes
                )
            eligible = population * sum(s * a for s, a in zip(shares, ages, strict=True))
            rate = min(MAX_ATTACK_RATE, outbreak.extra_cases / max(eligible, 1.0))
            plan = _OutbreakPlan(
                outbreak,
                self._cat.cases[case_key],
                ages,
                ip_share,
                rate,
                outbreak.start.toordinal(),
                (outbreak.end - outbreak.start).days + 1,
            )
            for commune in outbreak.communes:
                self._plans.setdefault(commune, []).append(plan)

    # -- lookup tables ------------------------------------------------------------------------

    def _case_tables(self) -> tuple[list[list[_Table]], list[list[_Table]]]:
        """Cumulative case weights per (age band, month) for visits and for admissions."""
        op_tables, ip_tables = [], []
        for band in range(len(self._cat.bands)):
            op_months, ip_months = [], []
            for month in range(12):
                for attr, out in (("op", op_months), ("ip", ip_months)):
                    cum: list[float] = []
                    chosen: list[_Case] = []
                    total = 0.0
                    for case in self._cat.cases.values():
                        weight = getattr(case, attr)[band] * case.season[month]
                        if weight > 0:
                            total += weight
                            cum.append(total)
                            chosen.append(case)
                    out.append((cum, chosen))
            op_tables.append(op_months)
            ip_tables.append(ip_months)
        return op_tables, ip_tables

    def _band(self, age: int) -> int:
        for index, (low, high) in enumerate(self._cat.bands):
            if low <= age <= high:
                return index
        return len(self._cat.bands) - 1

    def _day(self, ordinal: int) -> str:
        text = self._day_text.get(ordinal)
        if text is None:
            text = self._day_text[ordinal] = fmt_date(date.fromordinal(ordinal))
        return text

    def _ts(self, minute: int) -> str:
        """``yyyymmddHHMM`` of an absolute minute (ordinal * 1440 + minute of the day)."""
        return self._day(minute // 1440) + _HHMM[minute % 1440]

    @staticmethod
    def _dt(minute: int) -> datetime:
        day = date.fromordinal(minute // 1440)
        return datetime.combine(day, time((minute % 1440) // 60, minute % 60))

    def _next(self, facility: str, what: str) -> int:
        key = (facility, what)
        value = self._doc_seq.get(key, 0) + 1
        self._doc_seq[key] = value
        return value

    def _menu(self, person: Person) -> _Menu:
        key = (person.commune_code, person.bhyt_registered_facility)
        menu = self._menus.get(key)
        if menu is not None:
            return menu
        station = self._stations.get(person.commune_code)
        registered = self._by_code.get(person.bhyt_registered_facility or "")
        geo = units.commune_geo(person.commune_code)
        if geo is not None:
            where = (geo.latitude, geo.longitude)
        else:
            anchor = station or registered or self._facilities[0]
            where = (anchor.latitude, anchor.longitude)

        def nearest(candidates: Sequence[Facility]) -> Facility | None:
            if not candidates:
                return None
            return min(
                candidates,
                key=lambda f: (
                    (f.latitude - where[0]) ** 2 + (f.longitude - where[1]) ** 2,
                    f.code,
                ),
            )

        menu = _Menu(
            station=station,
            centre=nearest(self._centres),
            hospital=nearest(self._general),
            registered=registered,
            clinic=nearest(self._clinics),
        )
        self._menus[key] = menu
        return menu

    def _facility(
        self,
        menu: _Menu,
        levels: Sequence[tuple[float, str]],
        rng: random.Random,
        *,
        specialty: str = "",
        age: int = 30,
    ) -> Facility:
        """The facility for one visit: registered one when it fits, else by level."""
        wanted = {level for _, level in levels}
        registered = menu.registered
        if registered is not None and rng.random() < 0.7:
            kind = {"commune_station": "station", "medical_centre": "centre"}.get(
                registered.level, "hospital" if registered.level in _HOSPITALS else ""
            )
            if kind in wanted:
                return registered
        level = _pick(levels, rng.random())
        if level == "hospital":
            special = self._special.get(specialty) or []
            if special and (specialty != "children" or age < 16) and rng.random() < 0.5:
                return special[int(rng.random() * len(special))]
        order = {
            "station": (menu.station, menu.centre, menu.hospital),
            "centre": (menu.centre, menu.hospital, menu.station),
            "hospital": (menu.hospital, menu.centre, menu.station),
        }[level]
        for facility in order:
            if facility is not None:
                return facility
        return self._facilities[0]

    def _referral_target(self, menu: _Menu, facility: Facility) -> Facility | None:
        if facility.level in ("commune_station", "private_clinic"):
            return menu.centre or menu.hospital
        if facility.level == "medical_centre":
            return menu.hospital
        return None

    # -- the person's period ------------------------------------------------------------------

    def episodes_for(
        self,
        person: Person,
        identity_for: Callable[[Facility], PatientIdentity],
        rng: random.Random,
        children: Sequence[Person] | None = None,
    ) -> Iterator[Episode]:
        """All episodes of ``person`` in the period, in time order, deterministic given ``rng``.

        ``identity_for`` gives what a facility recorded about the person (called once per
        episode). ``children`` (born in the period) overrides the model's ``births`` mapping for
        this person: an empty sequence means no delivery.
        """
        cat = self._cat
        first = max(self._first, person.birth_date.toordinal())
        if person.birth_date >= self.start:  # the birth itself is the mother's episode
            first += 1
        last = self._last
        if person.death_date is not None:
            last = min(last, person.death_date.toordinal())
        if first > last:
            return
        span = last - first + 1
        years = span / 365.25
        age = person.age_on(date.fromordinal(first))
        band = self._band(age)
        female = person.sex == "female"
        menu = self._menu(person)
        random_ = rng.random

        events: list[tuple[int, int, int, str, Any]] = []  # (minute, priority, n, kind, payload)

        def add(minute: int, priority: int, kind: str, payload: Any = None) -> None:
            events.append((minute, priority, len(events), kind, payload))

        chronic = tuple(
            cat.cases[key] for key, prevalence in cat.chronic if random_() < prevalence[band]
        )
        if chronic:
            low, high = cat.chronic_interval
            day = first + int(random_() * low)
            while day <= last:
                add(day * 1440 + 420 + int(random_() * 480), 2, "chronic")
                day += low + int(random_() * (high - low + 1))
        for _ in range(_poisson(rng, cat.op_rate[band] * years)):
            add((first + int(random_() * span)) * 1440 + 420 + int(random_() * 540), 3, "op")
        for _ in range(_poisson(rng, cat.ip_rate[band] * years)):
            add((first + int(random_() * span)) * 1440 + int(random_() * 1440), 1, "ip")

        if children is None and self._births is not None:
            children = self._births.get(person.person_id, ())
        if female:
            for group in self._deliveries(person, children, first, last, age, rng):
                admit = max(group[0].minute - 90 - int(random_() * 600), first * 1440)
                add(admit, 0, "delivery", group)

        for plan in self._plans.get(person.commune_code, ()):
            if random_() < plan.rate * plan.ages[band]:
                offset = int(rng.triangular(0, plan.span, plan.span * 0.35))
                day = plan.first + min(offset, plan.span - 1)
                if first <= day <= last:
                    add(day * 1440 + 420 + int(random_() * 600), 0, "outbreak", plan)

        dies = person.death_date is not None and last == person.death_date.toordinal()
        if dies and random_() < cat.terminal_share:
            case = cat.cases[_pick(cat.terminal, random_())]
            stay = case.los[0] + int(random_() * (case.los[1] - case.los[0] + 1))
            admit_day = max(first, last - stay)
            add(admit_day * 1440 + int(random_() * 1440), 0, "terminal", case)

        events.sort()
        busy = -1
        for minute, _, _, kind, payload in events:
            if minute <= busy and kind != "delivery":
                continue  # already in hospital
            built = self._event(
                person, identity_for, rng, menu, minute, kind, payload, chronic, last
            )
            yield built.episode
            busy = max(busy, built.end)
            if built.referral is None:
                continue
            follow = built.end + 30 + int(random_() * 150)
            admitted = built.inpatient or random_() < 0.4
            if not admitted and follow % 1440 > 960:  # clinics close: go the next morning
                follow = (follow // 1440 + 1) * 1440 + 420 + int(random_() * 120)
            if follow // 1440 > last:
                continue
            second = self._build(
                person,
                identity_for,
                rng,
                menu,
                built.case,
                built.referral,
                follow,
                "ip" if admitted else "op",
                age=person.age_on(date.fromordinal(follow // 1440)),
                chronic=chronic,
                last=last,
                outbreak_id=built.episode.outbreak_id,
                referred=(built.episode.facility_code, built.paper),
            )
            yield second.episode
            busy = max(busy, second.end)

    def _deliveries(
        self,
        person: Person,
        children: Sequence[Person] | None,
        first: int,
        last: int,
        age: int,
        rng: random.Random,
    ) -> list[list[_Child]]:
        """Births of this woman in the period, one list of children per delivery."""
        if children is not None:
            groups: dict[int, list[_Child]] = {}
            for child in sorted(children, key=lambda c: (c.birth_date, c.person_id)):
                day = child.birth_date.toordinal()
                if not first <= day <= last:
                    continue
                clock = child.birth_time
                minute = clock.hour * 60 + clock.minute if clock else int(rng.random() * 1440)
                groups.setdefault(day, []).append(
                    _Child(
                        child.sex,
                        day * 1440 + minute,
                        child.full_name,
                        child.bhxh_number,
                        2300 + int(rng.random() * 1500),
                    )
                )
            return list(groups.values())
        if not 18 <= age <= 45:
            return []
        count = _poisson(rng, self._cat.birth_rate * (last - first + 1) / 365.25)
        out = []
        for _ in range(min(count, 1 + (last - first) // 365)):
            minute = (first + int(rng.random() * (last - first + 1))) * 1440
            minute += int(rng.random() * 1440)
            babies = 2 if rng.random() < 0.01 else 1
            out.append(
                [
                    _Child(
                        "female" if rng.random() < 0.48 else "male",
                        min(minute + n * 7, last * 1440 + 1439),
                        "",
                        f"{int(rng.random() * 10**10):010d}",
                        (2200 if babies == 2 else 2600) + int(rng.random() * 1300),
                    )
                    for n in range(babies)
                ]
            )
        return out

    # -- one event → one episode --------------------------------------------------------------

    def _event(
        self,
        person: Person,
        identity_for: Callable[[Facility], PatientIdentity],
        rng: random.Random,
        menu: _Menu,
        minute: int,
        kind: str,
        payload: Any,
        chronic: tuple[_Case, ...],
        last: int,
    ) -> _Built:
        """Choose the condition and the facility of one planned event, then build it."""
        cat = self._cat
        day = date.fromordinal(minute // 1440)
        age = person.age_on(day)  # at the event, not at the start of the period
        band = self._band(age)
        month = day.month - 1
        outbreak_id = None
        children = None
        death = False
        if kind in ("op", "ip"):
            cumulative, cases = (self._op_tables if kind == "op" else self._ip_tables)[band][month]
            index = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
            case = cases[min(index, len(cases) - 1)]
        elif kind == "chronic":
            case = chronic[int(rng.random() * len(chronic))]
        elif kind == "outbreak":
            plan: _OutbreakPlan = payload
            case, outbreak_id = plan.case, plan.outbreak.outbreak_id
            kind = "ip" if rng.random() < plan.ip_share else "op"
        elif kind == "terminal":
            case, kind, death = payload, "ip", True
        else:  # delivery
            children = payload
            twins = len(children) > 1
            caesarean = rng.random() < (0.8 if twins else cat.caesarean_share)
            case = cat.cases["caesarean" if caesarean else "delivery"]
            kind = "delivery"

        if kind == "op":
            if person.bhyt_card is None and menu.clinic and rng.random() < cat.clinic_share:
                facility = menu.clinic
            else:
                facility = self._facility(menu, case.levels, rng, specialty=case.specialty, age=age)
            if facility.level == "commune_station" and case.stay06 and rng.random() < case.stay06:
                kind = "stay"
        elif kind == "chronic":
            facility = self._facility(menu, case.levels, rng)
        else:
            levels = _DELIVERY_LEVELS if kind == "delivery" else case.ip_levels
            if kind == "delivery" and case.key == "caesarean":
                levels = _CAESAREAN_LEVELS
            facility = self._facility(menu, levels, rng, specialty=case.specialty, age=age)
            if facility.level == "private_clinic" or (
                facility.level == "commune_station" and kind != "delivery"
            ):
                facility = menu.centre or menu.hospital or facility
        return self._build(
            person,
            identity_for,
            rng,
            menu,
            case,
            facility,
            minute,
            kind,
            age=age,
            chronic=chronic,
            last=last,
            outbreak_id=outbreak_id,
            children=children,
            death=death,
        )

    def _lieu_dung(self, drug: _Drug, days: int) -> str:
        """LIEU_DUNG as the official example writes it (outpatients: days; inpatients: 1)."""
        key = (drug.key, days)
        text = self._lieu.get(key)
        if text is None:
            unit = drug.unit
            text = self._lieu[key] = (
                f"{drug.dose} {unit}/lần * {drug.times} lần/ngày * {days} ngày "
                f"[{drug.dose * drug.times} {unit}/ngày]"
            )
        return text

    def _drug_choice(
        self, pool: Sequence[str], count: int, age: int, rng: random.Random
    ) -> list[_Drug]:
        drugs = self._cat.drugs
        chosen: list[_Drug] = []
        seen: set[str] = set()
        for key in rng.sample(pool, min(count, len(pool))):
            drug = drugs[key]
            if age < 12:
                if drug.child:
                    drug = drugs[drug.child]
                elif drug.adult_only:
                    continue
            if drug.key not in seen:
                seen.add(drug.key)
                chosen.append(drug)
        return chosen

    def _weight(self, person: Person, age: int, day: int, rng: random.Random) -> str:
        male = person.sex == "male"
        if age < 1:
            months = max(0, (day - person.birth_date.toordinal()) // 30)
            kg = min(3.2 + 0.6 * months, 10.0)
        elif age <= len(_WEIGHTS):
            kg = _WEIGHTS[age - 1][0 if male else 1]
        elif age < 60:
            kg = 62.0 if male else 52.0
        else:
            kg = 58.0 if male else 49.0
        return "%.2f" % (kg * (0.88 + 0.24 * rng.random()))

    def _build(
        self,
        person: Person,
        identity_for: Callable[[Facility], PatientIdentity],
        rng: random.Random,
        menu: _Menu,
        case: _Case,
        fac: Facility,
        start: int,
        kind: str,
        *,
        age: int,
        chronic: tuple[_Case, ...],
        last: int,
        outbreak_id: str | None = None,
        referred: tuple[str, str] | None = None,
        children: list[_Child] | None = None,
        death: bool = False,
    ) -> _Built:
        """One episode: its timeline, lines, money and every table that applies."""
        cat = self._cat
        random_ = rng.random
        ts = self._ts
        ident = identity_for(fac)
        card = ident.ma_the_bhyt
        insured = bool(card)
        inpatient = kind in ("ip", "delivery", "stay")
        staff = self._staff[fac.code]
        pool = staff.inpatient if inpatient else staff.outpatient
        doc = pool[int(random_() * len(pool))]
        khoa, cchn, doc_id = doc.department_code, doc.certificate_number, doc.bhxh_number
        day0 = start // 1440
        key = (fac.code, day0)
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        ma_lk = f"{fac.code}{self._day(day0)}{seq:05d}"
        cap = last * 1440 + 1439

        # Diagnoses: the case's code, the person's chronic conditions, the case's companions.
        main = case.twins_icd if children and len(children) > 1 else case.icd
        names = cat.icd
        secondary = [c.icd for c in chronic if c.icd != main]
        for code, p in case.secondary:
            if code != main and code not in secondary and random_() < p:
                secondary.append(code)
        diagnosis = "; ".join([names[main], *(names[c] for c in secondary)])
        secondary_codes = ";".join(secondary)
        emergency = not children and case.emergency > 0 and random_() < case.emergency

        # Timeline (absolute minutes). Inpatients: admission, ward, discharge known up front.
        admit_ip = 0
        if inpatient:
            if kind == "stay":
                stay = 1 + int(random_() * 2)
            else:
                stay = case.los[0] + int(random_() * (case.los[1] - case.los[0] + 1))
            admit_ip = min(start + 20 + int(random_() * 70), cap - 1)
            if children:
                admit_ip = min(admit_ip, children[0].minute)
            end_day = last if death else min(day0 + stay, last)
            if death:
                end = end_day * 1440 + int(random_() * 1440)
                floor = admit_ip + 60
            else:
                end = end_day * 1440 + 480 + int(random_() * 180)
                floor = admit_ip + 240
            if children:
                floor = max(floor, children[-1].minute + 360)
            end = max(min(max(end, floor), cap), admit_ip + 1)
            end_day = end // 1440
            clock = admit_ip + 10
        else:
            end = cap
            clock = start + 5 + int(random_() * 20)

        lines: list[tuple[dict[str, str], int]] = []
        x2: list[dict[str, str]] = []
        x3: list[dict[str, str]] = []
        x4: list[dict[str, str]] = []
        totals = [0, 0, 0, 0]  # THANH_TIEN_BV, THANH_TIEN_BH, T_THUOC, T_VTYT (cents)
        scale = 1 if insured else 0  # uninsured: TYLE_TT_BH 0

        def service_line(svc: _Service, qty: int, yl: int, th: int, kq: int, **extra: str) -> None:
            bv = qty * svc.price * 100
            tyle = 100 * scale
            bh = qty * svc.price * tyle
            row = {
                **svc.const,
                "MA_LK": ma_lk,
                "STT": _N[len(x3) + 1],
                "SO_LUONG": fmt_qty(qty),
                "TYLE_TT_BH": _N[tyle],
                "THANH_TIEN_BV": _money(bv),
                "THANH_TIEN_BH": _money(bh),
                "T_BNTT": _money(bv - bh),
                "MA_KHOA": khoa,
                "MA_BAC_SI": cchn,
                "MA_BENH": main,  # required by the vendor rules; the main code
                "NGAY_YL": ts(yl),
                **extra,
            }
            if svc.performer:
                row["NGUOI_THUC_HIEN"] = cchn
                row["NGAY_TH_YL"] = ts(th)
            if svc.result:
                row["NGAY_KQ"] = ts(kq)
            x3.append(row)
            lines.append((row, bh))
            totals[0] += bv
            totals[1] += bh
            if svc.group in (10, 11):
                totals[3] += bv

        def drug_line(drug: _Drug, qty: int, lieu: str, yl: str, th: str) -> None:
            bv = qty * drug.price * 100
            tyle = drug.tyle * scale
            bh = qty * drug.price * tyle
            row = {
                **drug.const,
                "MA_LK": ma_lk,
                "STT": _N[len(x2) + 1],
                "LIEU_DUNG": lieu,
                "TYLE_TT_BH": _N[tyle],
                "SO_LUONG": fmt_qty(qty),
                "THANH_TIEN_BV": _money(bv),
                "THANH_TIEN_BH": _money(bh),
                "T_BNTT": _money(bv - bh),
                "MA_KHOA": khoa,
                "MA_BAC_SI": cchn,
                "NGAY_YL": yl,
                "NGAY_TH_YL": th,
            }
            x2.append(row)
            lines.append((row, bh))
            totals[0] += bv
            totals[1] += bh
            totals[2] += bv

        # Examination.
        service_line(cat.exam[fac.level], 1, clock, clock, clock)

        # Laboratory, imaging, functional tests — each with its XML4 results.
        lab_names: list[str] = []
        last_result = clock
        order = clock + 10
        for svc_key, p in case.ip_labs if inpatient else case.labs:
            if p < 1 and random_() >= p:
                continue
            svc = cat.services[svc_key]
            done = min(order + 5 + int(random_() * 20), end)
            result = min(done + 30 + int(random_() * 60), end)
            service_line(svc, 1, min(order, end), done, result)
            self._results(x4, ma_lk, svc, case, ts(result), doc_id, random_)
            lab_names.append(svc.name)
            last_result = max(last_result, result)

        # Procedures, surgery, and the supplies they use.
        proc_names: list[str] = []
        procedures: list[str] = []
        for svc_key, p in case.procs:
            if p < 1 and random_() >= p:
                continue
            svc = cat.services[svc_key]
            when = min(last_result + 15 + int(random_() * 30), end)
            done = min(when + 20, end)
            last_result = done
            service_line(svc, 1, when, done, done)
            for supply in svc.supplies:
                service_line(cat.supplies[supply], 1, when, done, done, MA_DICH_VU=svc.code)
            proc_names.append(svc.name)
            if svc.pttt_qt:
                procedures.append(svc.pttt_qt)
        if children:  # the birth itself is the delivery procedure's time
            last_result = max(last_result, children[-1].minute)

        # Drugs: outpatients get one prescription line per drug; inpatients one per drug per day.
        med_days = 0
        if inpatient:
            chosen = self._drug_choice(case.ip_drugs, 2 + int(random_() * 3), age, rng)
            days_billed = max(1, end_day - day0)
            for d in range(days_billed):
                at = admit_ip + 15 if d == 0 else (day0 + d) * 1440 + 420 + int(random_() * 90)
                at = min(at, end)
                yl, th = ts(at), ts(min(at + 30, end))
                for drug in chosen:
                    drug_line(drug, drug.dose * drug.times, self._lieu_dung(drug, 1), yl, th)
            bed = cat.bed[fac.level]
            bed_code = f"H{1 + int(random_() * 60):03d}"
            for d in range(days_billed):
                at = admit_ip if d == 0 else (day0 + d) * 1440 + 420
                at = min(at, end)
                service_line(bed, 1, at, at, at, MA_GIUONG=bed_code)
        else:
            low, high = case.ndrugs
            chosen = self._drug_choice(
                case.drugs, low + int(random_() * (high - low + 1)), age, rng
            )
            if random_() < cat.supplement_share:
                extras = cat.supplements if age >= 12 else cat.child_supplements
                extra = cat.drugs[extras[int(random_() * len(extras))]]
                if extra not in chosen:
                    chosen.append(extra)
            if kind == "chronic":
                med_days = 28 + 2 * int(random_() * 2)
            else:
                med_days = (3, 5, 7)[int(random_() * (2 if age < 12 else 3))]
            at = last_result + 10 + int(random_() * 15)
            yl, th = ts(at), ts(at + 5)
            for drug in chosen:
                qty = drug.dose * drug.times * med_days
                drug_line(drug, qty, self._lieu_dung(drug, med_days), yl, th)
            end = at + 10 + int(random_() * 25)
            end_day = end // 1440
        drug_names = [drug.const["TEN_THUOC"] for drug in chosen]

        # Insurance share: card benefit digit, 100% at commune stations and under the low limit.
        muc = _BENEFIT.get(card[2:3], 80) if insured else 0
        if insured and (fac.level == "commune_station" or totals[1] < LOW_COST_LIMIT_CENTS):
            muc = 100
        muc_text = _N[muc]
        copay = 0
        for row, bh in lines:
            paid = (bh * muc + 50) // 100
            row["MUC_HUONG"] = muc_text
            row["T_BHTT"] = _money(paid)
            row["T_BNCCT"] = _money(bh - paid)
            copay += bh - paid
        total_bv, total_bh = totals[0], totals[1]

        # Referral onwards, kind of episode, outcome.
        dest: Facility | None = None
        if referred is None and not death and not children:
            if inpatient:
                chance = case.referral
            elif kind == "chronic":
                chance = 0.003
            else:
                chance = {"commune_station": 0.03, "medical_centre": 0.012}.get(fac.level, 0.0)
                chance += case.referral * 0.5
            if chance and random_() < chance:
                dest = self._referral_target(menu, fac)
        if inpatient:
            loai = "06" if kind == "stay" else "03"
        elif (
            kind == "chronic"
            and dest is None
            and day0 + med_days - 1 <= last
            and random_() < cat.chronic_05_share
        ):
            loai = "05"  # chronic outpatient care with medication (NGAY_RA = last day of it)
        else:
            loai = "01"
        if death:
            result_code = "5" if random_() < 0.6 else "6"
            leave = "1" if result_code == "5" else "4"
        elif dest is not None:
            result_code, leave = ("3" if random_() < 0.7 else "4"), "2"
        elif inpatient:
            r = random_()
            result_code = "1" if r < 0.55 else "2" if r < 0.96 else "3"
            leave = "4" if random_() < 0.03 else "1"
        else:
            result_code = "2" if kind == "chronic" or random_() < 0.6 else "1"
            leave = "1"

        if loai == "05":
            ra_minute = (day0 + med_days - 1) * 1440 + 1439  # last day of medication, 23:59
            days_treated = med_days
        else:
            ra_minute = end
            days_treated = 0 if loai == "01" else end_day - day0 + 1
        pay = end + 5 + int(random_() * (50 if inpatient else 15))
        pay_day = self._day(pay // 1440)
        vao, ra = ts(start), ts(ra_minute)
        vao_nt = ts(admit_ip) if inpatient else ""
        lydo = case.ip_lydo if inpatient else case.lydo
        if not insured:
            doituong = "9"
        elif referred is not None:
            doituong = "1.3"
        elif emergency:
            doituong = "2"
        elif fac.code == ident.ma_dkbd:
            doituong = "1.1"
        elif fac.level in _HOSPITALS:
            doituong = "3.2"
        else:
            doituong = "1.2"
        head = staff.head
        hsba = ("BA" if inpatient else "PK") + ma_lk[5:]
        x1 = {
            "MA_LK": ma_lk,
            "STT": "1",
            "MA_BN": ident.ma_bn,
            "HO_TEN": ident.ho_ten,
            "SO_CCCD": ident.so_cccd,
            "NGAY_SINH": ident.ngay_sinh,
            "GIOI_TINH": ident.gioi_tinh,
            "MA_QUOCTICH": ident.ma_quoctich,
            "MA_DANTOC": ident.ma_dantoc,
            "MA_NGHE_NGHIEP": ident.ma_nghe_nghiep,
            "DIA_CHI": ident.dia_chi,
            "MATINH_CU_TRU": ident.matinh_cu_tru,
            "MAHUYEN_CU_TRU": ident.mahuyen_cu_tru,
            "MAXA_CU_TRU": ident.maxa_cu_tru,
            "DIEN_THOAI": ident.dien_thoai,
            "MA_THE_BHYT": card,
            "MA_DKBD": ident.ma_dkbd,
            "GT_THE_TU": ident.gt_the_tu,
            "GT_THE_DEN": ident.gt_the_den,
            "LY_DO_VV": lydo,
            "LY_DO_VNT": lydo if inpatient else "",
            "CHAN_DOAN_VAO": case.vao or names[main],
            "CHAN_DOAN_RV": diagnosis,
            "MA_BENH_CHINH": main,
            "MA_BENH_KT": secondary_codes,
            "MA_PTTT_QT": ";".join(procedures),
            "MA_DOITUONG_KCB": doituong,
            "MA_NOI_DI": referred[0] if referred else "",
            "MA_NOI_DEN": dest.code if dest else "",
            "MA_TAI_NAN": case.tai_nan[int(random_() * len(case.tai_nan))] if case.tai_nan else "",
            "NGAY_VAO": vao,
            "NGAY_VAO_NOI_TRU": vao_nt,
            "NGAY_RA": ra,
            "GIAY_CHUYEN_TUYEN": referred[1] if referred else "",
            "SO_NGAY_DTRI": _N[days_treated],
            "PP_DIEU_TRI": case.pp,
            "KET_QUA_DTRI": result_code,
            "MA_LOAI_RV": leave,
            "GHI_CHU": _ADVICE,
            "NGAY_TTOAN": ts(pay),
            "T_THUOC": _money(totals[2]),
            "T_VTYT": _money(totals[3]),
            "T_TONGCHI_BV": _money(total_bv),
            "T_TONGCHI_BH": _money(total_bh),
            "T_BNTT": _money(total_bv - total_bh),
            "T_BNCCT": _money(copay),
            "T_BHTT": _money(total_bh - copay),
            "T_NGUONKHAC": _ZERO,
            "T_BHTT_GDV": _money(total_bh - copay),  # every line is fee-for-service (MA_PTTT 1)
            "NAM_QT": pay_day[:4],
            "THANG_QT": str(int(pay_day[4:6])),
            "MA_LOAI_KCB": loai,
            "MA_KHOA": khoa,
            "MA_CSKCB": fac.code,
            "CAN_NANG": self._weight(person, age, day0, rng),
            "CAN_NANG_CON": ";".join(str(c.grams) for c in children) if children else "",
            "MA_HSBA": hsba,
            "MA_TTDV": head,
        }
        tables: dict[str, list[dict[str, str]]] = {"XML1": [x1]}
        if x2:
            tables["XML2"] = x2
        tables["XML3"] = x3
        if x4:
            tables["XML4"] = x4
        results_text = "; ".join(lab_names) if lab_names else "Không làm cận lâm sàng"
        course = f"{lydo}. Điều trị: {case.pp.lower()}."

        if inpatient:
            notes = []
            days_stayed = end_day - day0 + 1
            for d in range(days_stayed):
                if d == 0:
                    at = admit_ip + 10
                    text = f"Vào viện vì {lydo.lower()}. Chẩn đoán: {names[main]}."
                elif d == days_stayed - 1:
                    at = end - 30
                    text = (
                        "Bệnh diễn biến nặng, tiên lượng xấu."
                        if death
                        else "Bệnh ổn định, cho ra viện, hẹn tái khám."
                    )
                else:
                    at = (day0 + d) * 1440 + 450 + int(random_() * 60)
                    text = _WARD_NOTES[d % len(_WARD_NOTES)]
                note = {
                    "MA_LK": ma_lk,
                    "STT": _N[d + 1],
                    "DIEN_BIEN_LS": text,
                    "THOI_DIEM_DBLS": ts(max(start, min(at, end))),
                    "NGUOI_THUC_HIEN": doc_id,
                }
                if d == 0 and proc_names:
                    note["PHAU_THUAT"] = "; ".join(proc_names)
                notes.append(note)
            tables["XML5"] = notes
            if loai == "03":
                tables["XML7"] = [
                    {
                        "MA_LK": ma_lk,
                        "SO_LUU_TRU": hsba,
                        "MA_YTE": ident.ma_bn,
                        "MA_KHOA_RV": khoa,
                        "NGAY_VAO": vao,
                        "NGAY_RA": ra,
                        "MA_DINH_CHI_THAI": "0",
                        "TUOI_THAI": _N[37 + int(random_() * 4)] if children else "",
                        "CHAN_DOAN_RV": diagnosis,
                        "PP_DIEUTRI": case.pp,
                        "GHI_CHU": _ADVICE,
                        "MA_TTDV": head,
                        "MA_BS": doc_id,
                        "TEN_BS": doc.full_name,
                        "NGAY_CT": self._day(end_day),
                    }
                ]
            tables["XML8"] = [
                {
                    "MA_LK": ma_lk,
                    "MA_LOAI_KCB": loai,
                    "NGAY_VAO": vao,
                    "NGAY_RA": ra,
                    "CHAN_DOAN_VAO": case.vao or names[main],
                    "CHAN_DOAN_RV": diagnosis,
                    "QT_BENHLY": course,
                    "TOMTAT_KQ": results_text,
                    "PP_DIEUTRI": case.pp,
                    "KET_QUA_DTRI": result_code,
                    "MA_TTDV": head,
                    "NGAY_CT": self._day(end_day),
                }
            ]
        if children:
            tables["XML9"] = self._birth_rows(
                ma_lk, person, ident, fac, children, case.key == "caesarean", doc, staff, rng
            )
        paper = ""
        if dest is not None:
            number = self._next(fac.code, "CT")
            year = self._day(end_day)[:4]
            paper = f"{number:05d}/{year}/GCT"
            tables["XML13"] = [
                {
                    "MA_LK": ma_lk,
                    "SO_HOSO": f"{number:05d}/{year}/HS",
                    "SO_CHUYENTUYEN": _N[number % 5000],
                    "GIAY_CHUYEN_TUYEN": paper,
                    "MA_CSKCB": fac.code,
                    "MA_NOI_DI": referred[0] if referred else "",
                    "MA_NOI_DEN": dest.code,
                    "HO_TEN": ident.ho_ten,
                    "NGAY_SINH": ident.ngay_sinh,
                    "GIOI_TINH": ident.gioi_tinh,
                    "MA_QUOCTICH": ident.ma_quoctich,
                    "MA_DANTOC": ident.ma_dantoc,
                    "MA_NGHE_NGHIEP": ident.ma_nghe_nghiep,
                    "DIA_CHI": ident.dia_chi,
                    "MA_THE_BHYT": card,
                    "GT_THE_DEN": ident.gt_the_den,
                    "NGAY_VAO": vao,
                    "NGAY_VAO_NOI_TRU": vao_nt,
                    "NGAY_RA": ra,
                    "DAU_HIEU_LS": lydo,
                    "CHAN_DOAN_RV": diagnosis,
                    "QT_BENHLY": course,
                    "TOMTAT_KQ": results_text,
                    "PP_DIEUTRI": case.pp,
                    "MA_BENH_CHINH": main,
                    "MA_BENH_KT": secondary_codes,
                    "TEN_DICH_VU": "; ".join(lab_names + proc_names) or cat.exam[fac.level].name,
                    "TEN_THUOC": "; ".join(drug_names),
                    "PP_DIEU_TRI": case.pp,
                    "MA_LOAI_RV": "2",
                    "MA_LYDO_CT": "2" if random_() < 0.8 else "1",
                    "HUONG_DIEU_TRI": "Chuyển tuyến trên tiếp tục chẩn đoán và điều trị",
                    "PHUONGTIEN_VC": "Xe cứu thương" if inpatient else "Tự túc",
                    "MA_BAC_SI": cchn,
                    "MA_TTDV": head,
                }
            ]
        elif not inpatient and case.followup and random_() < case.followup:
            again = (ra_minute // 1440) + (1 if loai == "05" else case.followup_days)
            x1["NGAY_TAI_KHAM"] = self._day(again)
            number = self._next(fac.code, "GH")
            tables["XML14"] = [
                {
                    "MA_LK": ma_lk,
                    "SO_GIAYHEN_KL": f"{number:05d}/{self._day(day0)[:4]}/GH",
                    "MA_CSKCB": fac.code,
                    "HO_TEN": ident.ho_ten,
                    "NGAY_SINH": ident.ngay_sinh,
                    "GIOI_TINH": ident.gioi_tinh,
                    "DIA_CHI": ident.dia_chi,
                    "MA_THE_BHYT": card,
                    "GT_THE_DEN": ident.gt_the_den,
                    "NGAY_VAO": vao,
                    "NGAY_RA": ra,
                    "NGAY_HEN_KL": self._day(again) + _HHMM[450],
                    "CHAN_DOAN_RV": diagnosis,
                    "MA_BENH_CHINH": main,
                    "MA_BENH_KT": secondary_codes,
                    "MA_DOITUONG_KCB": doituong,
                    "MA_BAC_SI": cchn,
                    "MA_TTDV": head,
                    "NGAY_CT": self._day(day0),
                }
            ]
        if case.tb:
            tables["XML15"] = [
                {
                    "MA_LK": ma_lk,
                    "STT": "1",
                    "MA_BN": ident.ma_bn,
                    "HO_TEN": ident.ho_ten,
                    "SO_CCCD": ident.so_cccd,
                    "PHANLOAI_LAO_VITRI": "1",
                    "PHANLOAI_LAO_TS": "1" if random_() < 0.85 else "2",
                    "PHANLOAI_LAO_HIV": "2",
                    "PHANLOAI_LAO_VK": "1",
                    "LOAI_DTRI_LAO": "2",
                    "NGAYBD_DTRI_LAO": self._day(day0),
                    "PHACDO_DTRI_LAO": "2" if age < 16 else "1",
                    "MA_CSKCB": fac.code,
                }
            ]
        episode = Episode(
            ma_lk=ma_lk,
            facility_code=fac.code,
            person_id=person.person_id,
            admitted=self._dt(start),
            discharged=self._dt(ra_minute),
            tables=tables,
            outbreak_id=outbreak_id,
        )
        return _Built(episode, dest, end, case, paper, inpatient)

    def _results(
        self,
        out: list[dict[str, str]],
        ma_lk: str,
        svc: _Service,
        case: _Case,
        when: str,
        reader: str,
        random_: Callable[[], float],
    ) -> None:
        """XML4 rows of one para-clinical service: one per indicator, or one report."""
        if not svc.indicators:
            finding = case.findings.get(svc.key)
            out.append(
                {
                    "MA_LK": ma_lk,
                    "STT": _N[len(out) + 1],
                    "MA_DICH_VU": svc.code,
                    "TEN_CHI_SO": svc.name,
                    "MO_TA": f"{finding}." if finding else svc.text,
                    "KET_LUAN": finding or svc.conclusion,
                    "NGAY_KQ": when,
                    "MA_BS_DOC_KQ": reader,
                }
            )
            return
        high, low, positive = case.high, case.low, case.positive
        for ind in svc.indicators:
            conclusion = ""
            if ind.numeric:
                r = random_()
                if ind.code in high:
                    value, conclusion = ind.high * (1.15 + 0.8 * r), "Tăng"
                elif ind.code in low:
                    value, conclusion = ind.low * (0.35 + 0.5 * r), "Giảm"
                else:
                    value = ind.low + (ind.high - ind.low) * (0.1 + 0.8 * r)
                text = ind.pattern % value
            else:
                text = ind.abnormal if ind.code in positive else ind.normal
            out.append(
                {
                    "MA_LK": ma_lk,
                    "STT": _N[len(out) + 1],
                    "MA_DICH_VU": svc.code,
                    "MA_CHI_SO": ind.code,
                    "TEN_CHI_SO": ind.name,
                    "GIA_TRI": text,
                    "DON_VI_DO": ind.unit,
                    "MO_TA": ind.mo_ta,
                    "KET_LUAN": conclusion,
                    "NGAY_KQ": when,
                    "MA_BS_DOC_KQ": reader,
                }
            )

    def _birth_rows(
        self,
        ma_lk: str,
        mother: Person,
        ident: PatientIdentity,
        fac: Facility,
        children: list[_Child],
        caesarean: bool,
        doc: Practitioner,
        staff: _Staff,
        rng: random.Random,
    ) -> list[dict[str, str]]:
        """XML9: one birth certificate per child of the delivery."""
        so_cccd = ident.so_cccd
        if len(so_cccd) == 12:
            issued = f"2021{1 + int(rng.random() * 12):02d}{1 + int(rng.random() * 28):02d}"
        elif len(so_cccd) == 9:
            issued = f"{2005 + int(rng.random() * 10)}{1 + int(rng.random() * 12):02d}15"
        else:
            issued = ""
        order = 1 + int(rng.random() * 3)
        writer = staff.everyone[int(rng.random() * len(staff.everyone))]
        rows = []
        for child in children:
            number = self._next(fac.code, "GCS")
            day = self._day(child.minute // 1440)
            rows.append(
                {
                    "MA_LK": ma_lk,
                    "MA_BHXH_NND": mother.bhxh_number,
                    "MA_THE_NND": ident.ma_the_bhyt,
                    "HO_TEN_NND": ident.ho_ten,
                    "NGAYSINH_NND": ident.ngay_sinh[:8],
                    "MA_DANTOC_NND": ident.ma_dantoc,
                    "SO_CCCD_NND": so_cccd,
                    "NGAYCAP_CCCD_NND": issued,
                    "NOICAP_CCCD_NND": _ID_ISSUER if issued else "",
                    "NOI_CU_TRU_NND": ident.dia_chi,
                    "MA_QUOCTICH": ident.ma_quoctich,
                    "MATINH_CU_TRU": ident.matinh_cu_tru,
                    "MAHUYEN_CU_TRU": ident.mahuyen_cu_tru,
                    "MAXA_CU_TRU": ident.maxa_cu_tru,
                    "MA_THE_TAM": f"TE1{fac.code[:2]}{child.bhxh}",
                    "HO_TEN_CON": child.name,
                    "GIOI_TINH_CON": "1" if child.sex == "male" else "2",
                    "SO_CON": _N[len(children)],
                    "LAN_SINH": _N[order],
                    "SO_CON_SONG": _N[order - 1 + len(children)],
                    "CAN_NANG_CON": str(child.grams),
                    "NGAY_SINH_CON": self._ts(child.minute),
                    "NOI_SINH_CON": fac.name,
                    "TINH_TRANG_CON": "Khỏe mạnh",
                    "SINHCON_PHAUTHUAT": "1" if caesarean else "0",
                    "SINHCON_DUOI32TUAN": "0",
                    "GHI_CHU": "Sinh con phải phẫu thuật" if caesarean else "",
                    "NGUOI_DO_DE": doc.full_name,
                    "NGUOI_GHI_PHIEU": writer.full_name,
                    "NGAY_CT": day,
                    "SO": f"{number:05d}",
                    "QUYEN_SO": f"{day[:4]}/01",
                    "MA_TTDV": staff.head,
                }
            )
        return rows


@dataclass(slots=True)
class _Built:
    episode: Episode
    referral: Facility | None
    end: int  # absolute minute the patient left
    case: _Case
    paper: str  # GIAY_CHUYEN_TUYEN when referred onwards
    inpatient: bool


_DELIVERY_LEVELS = _cumulative({"station": 0.04, "centre": 0.5, "hospital": 0.46})
_CAESAREAN_LEVELS = _cumulative({"centre": 0.45, "hospital": 0.55})
