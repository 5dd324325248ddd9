"""Synthetic 115 emergency calls for one province, with the rhythms a dispatch centre sees.

Why: the dispatch module (triage, assignment, KPIs) needs call streams whose volume, timing
and mix look like a real centre's, without real callers' data.

Model and assumptions (none is from a Vietnamese source — all **unconfirmed**):

* **Rate**: ``rate_per_100k`` calls per 100,000 residents per day, default 20 (the project
  assumes 15–25; no published per-capita 115 call rate was found). Weekly and daily rhythms
  redistribute calls without changing the weekly mean; public holidays add calls.
* **Mix and priority**: the :data:`COMPLAINTS` table below — share of calls, priority
  distribution (1 immediate/red, 2 urgent/yellow, 3 non-urgent/green), hour-of-day profile,
  weekend and holiday multipliers, patient age and sex. Injuries (traffic, assault,
  poisoning with alcohol) peak in the evening and at weekends; elderly medical calls (stroke,
  chest pain, breathing difficulty, unconsciousness) peak in the early morning.
* **Holidays** (optional): Tết (from two days before the lunar new year to its 6th day,
  dates for 2020–2030 tabulated here; outside that range Tết is not modelled) and
  the fixed-date holidays 1/1, 30/4, 1/5, 1/9 and 2/9.
* **Place**: a commune drawn by weight (default: phường 3, xã 1, đặc khu 0.5, because urban
  wards are denser), then a point jittered around the commune's reference point within a
  radius from its area (``ytehub.core.units.commune_geo``).
* **Counts**: Poisson per (day, hour, complaint); times uniform within the hour.

CSV layout (``write_calls_csv``): UTF-8 without BOM, comma-separated, header row, CRLF line
ends, RFC 4180 quoting. Columns: call_id, received_at (ISO 8601 with +07:00), province_code,
commune_code, latitude, longitude (WGS 84, 6 decimals), complaint, priority (1/2/3),
caller_phone, patient_sex (1/2/3 as GIOI_TINH), patient_age (years, may be empty), note
(Vietnamese free text). :data:`CALLS_CSV_LAYOUT_DOC` is the same as a markdown table.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import IO

from ytehub.core.units import Commune, commune_geo, communes
from ytehub.synth.csvio import rows_text, write_rows

__all__ = [
    "CALLS_CSV_COLUMNS",
    "CALLS_CSV_LAYOUT_DOC",
    "COMPLAINTS",
    "VN_TZ",
    "Complaint",
    "EmergencyCall",
    "calls_csv_text",
    "emergency_calls",
    "holiday_kind",
    "write_calls_csv",
]

VN_TZ = timezone(timedelta(hours=7), "ICT")
DEFAULT_RATE_PER_100K = 20.0

# Relative weights for hours 0..23 (normalised when used); two rows: 00–11 h, 12–23 h.
_HOURS: dict[str, tuple[float, ...]] = {
    # traffic, burns: build through the afternoon, peak after work and dinner
    "evening": (3, 2, 1.5, 1, 1, 1.5, 3, 5, 5, 4, 4, 4,
                4.5, 4, 4, 4.5, 6, 8, 9, 9, 8, 7, 5.5, 4),
    # older people's medical emergencies: found or worsening on waking
    "morning": (2, 1.5, 1.5, 1.5, 2, 5, 8, 9, 8, 6, 5, 4.5,
                4, 4, 4, 4, 4, 4, 4.5, 4.5, 4, 3.5, 3, 2.5),
    # daytime activity (falls at work, drowning, general illness)
    "daytime": (2, 1.5, 1.5, 1.5, 1.5, 2, 3, 4.5, 5.5, 6, 6, 5.5,
                5, 5, 5.5, 5.5, 5.5, 5.5, 5, 5, 4.5, 4, 3, 2.5),
    # drinking and fights
    "night": (6, 5, 3.5, 2, 1.5, 1, 1, 1.5, 2, 2.5, 3, 3.5,
              4, 3.5, 3, 3, 3.5, 4.5, 6, 7, 8, 8.5, 8.5, 7.5),
    # children's fever and seizures: worse in the evening and night
    "child": (4, 3.5, 3, 2.5, 2.5, 2.5, 3, 3.5, 4, 4, 4, 4,
              4, 4, 4, 4, 4.5, 5, 6, 6.5, 6.5, 6, 5.5, 5),
    "flat": (1,) * 24,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Complaint:
    """One complaint category of the call-taker's form, with its generation parameters."""

    code: str
    name_vi: str
    name_en: str
    share: float  # share of all calls (the table sums to 1)
    priority: tuple[float, float, float]  # P(priority 1), P(2), P(3)
    hours: str  # key of the hour-of-day profile
    weekend: float  # Saturday/Sunday rate relative to a weekday
    holiday: float  # rate multiplier on holidays
    age: tuple[int, int, float]  # triangular (low, high, mode) in years
    female: float  # share of female patients
    notes: tuple[tuple[int, str], ...]  # (priority, template with {who}, {age}, {place})
    places: tuple[str, ...] = ()  # words for {place}; empty = the general list


_ROAD = (
    "tại ngã tư",
    "trên quốc lộ",
    "trên đường tỉnh lộ",
    "trước cổng chợ",
    "gần trường học",
    "ở đoạn đường đèo",
)
_PLACES = (
    "tại nhà",
    "đầu hẻm",
    "trước cổng chợ",
    "ở công trường",
    "tại quán nhậu",
    "ở nhà văn hóa thôn",
)
_HOME = ("tại nhà", "ở nhà trọ", "trên đường đến trạm y tế")
_WATER = ("ở ao gần nhà", "ở bờ sông", "ở bãi biển", "ở hồ thủy lợi")

# Notes are (priority, template): a call-taker's words match the priority they assign.
COMPLAINTS: tuple[Complaint, ...] = (
    Complaint(
        "traffic_accident", "Tai nạn giao thông", "Traffic accident", 0.22,
        (0.30, 0.45, 0.25), "evening", 1.35, 1.6, (5, 75, 24), 0.30,
        (
            (1, "Tai nạn giao thông {place}, {who} bất tỉnh, nhiều người vây quanh."),
            (1, "Xe máy va chạm xe tải {place}, {who} chảy máu nhiều, thở yếu."),
            (2, "Va chạm xe máy {place}, {who} chảy máu đầu, còn tỉnh."),
            (2, "Xe máy tông ô tô {place}, {who} đau chân không đứng dậy được."),
            (3, "Tự ngã xe máy {place}, {who} trầy xước tay chân, tỉnh táo."),
        ),
        _ROAD,
    ),
    Complaint(
        "fall", "Ngã, chấn thương do ngã", "Fall", 0.09,
        (0.10, 0.40, 0.50), "daytime", 1.0, 1.0, (1, 95, 72), 0.55,
        (
            (1, "{who} ngã từ giàn giáo {place}, không cử động được chân, lơ mơ."),
            (2, "{who} ngã {place}, đau hông, không tự đi lại được."),
            (3, "{who} trượt ngã {place}, đau cổ tay, tỉnh táo."),
        ),
    ),
    Complaint(
        "chest_pain", "Đau ngực", "Chest pain", 0.07,
        (0.55, 0.35, 0.10), "morning", 1.0, 1.0, (30, 95, 62), 0.40,
        (
            (1, "{who} đau thắt ngực, vã mồ hôi, khó thở."),
            (2, "{who} đau ngực trái lan lên vai, tiền sử tăng huyết áp."),
            (3, "{who} tức ngực nhẹ từ hôm qua, vẫn đi lại được."),
        ),
    ),
    Complaint(
        "stroke_symptoms", "Dấu hiệu đột quỵ", "Stroke symptoms", 0.06,
        (0.80, 0.18, 0.02), "morning", 1.0, 1.0, (35, 98, 68), 0.45,
        (
            (1, "{who} đột ngột méo miệng, yếu nửa người, nói ngọng."),
            (1, "{who} đang sinh hoạt thì không nói được, tay chân bên phải yếu."),
            (2, "{who} tê tay trái, chóng mặt, đã đỡ một phần."),
        ),
    ),
    Complaint(
        "breathing_difficulty", "Khó thở", "Breathing difficulty", 0.09,
        (0.45, 0.45, 0.10), "morning", 1.0, 1.0, (0, 95, 66), 0.50,
        (
            (1, "{who} khó thở, thở rít, môi tím tái."),
            (2, "{who} lên cơn hen, xịt thuốc không đỡ."),
            (3, "{who} ho, khó thở nhẹ khi gắng sức."),
        ),
    ),
    Complaint(
        "childbirth", "Chuyển dạ, sinh con", "Labour / childbirth", 0.04,
        (0.25, 0.60, 0.15), "flat", 1.0, 1.0, (16, 45, 27), 1.0,
        (
            (1, "Sản phụ {age} tuổi sắp sinh, ra máu nhiều."),
            (2, "Sản phụ {age} tuổi đau bụng chuyển dạ, vỡ ối {place}."),
            (3, "Sản phụ {age} tuổi đau bụng lâm râm, thai 38 tuần, cần đưa đi viện."),
        ),
        _HOME,
    ),
    Complaint(
        "poisoning", "Ngộ độc", "Poisoning", 0.04,
        (0.30, 0.50, 0.20), "night", 1.3, 1.5, (2, 80, 32), 0.40,
        (
            (1, "{who} uống nhầm thuốc trừ sâu, miệng có mùi hóa chất, lơ mơ."),
            (2, "{who} say rượu, lơ mơ, nôn liên tục."),
            (3, "{who} nôn, đau bụng sau khi ăn cỗ {place}."),
        ),
    ),
    Complaint(
        "assault", "Đánh nhau, bị hành hung", "Assault", 0.04,
        (0.25, 0.45, 0.30), "night", 1.45, 1.4, (14, 70, 27), 0.20,
        (
            (1, "Đánh nhau {place}, {who} bị đâm vào bụng, chảy máu nhiều."),
            (2, "{who} bị đánh vào đầu {place}, choáng váng."),
            (3, "Xô xát {place}, {who} bị xây xát mặt, tỉnh táo."),
        ),
    ),
    Complaint(
        "burn", "Bỏng", "Burn", 0.02,
        (0.30, 0.45, 0.25), "evening", 1.1, 1.2, (0, 80, 25), 0.45,
        (
            (1, "Nổ bình gas {place}, {who} bị bỏng mặt và hai tay."),
            (2, "{who} bị bỏng nước sôi ở tay và ngực."),
            (3, "{who} bị bỏng dầu ăn ở bàn tay."),
        ),
    ),
    Complaint(
        "unconscious", "Bất tỉnh, hôn mê", "Unconscious", 0.06,
        (0.90, 0.10, 0.00), "morning", 1.0, 1.0, (0, 98, 66), 0.45,
        (
            (1, "{who} tự nhiên ngã gục, gọi không biết."),
            (1, "Phát hiện {who} nằm bất động {place}, không rõ thở."),
            (2, "{who} ngất xỉu, đã tỉnh lại nhưng còn mệt."),
        ),
    ),
    Complaint(
        "child_fever_seizure", "Sốt cao, co giật ở trẻ em", "Fever / seizure in a child", 0.06,
        (0.35, 0.50, 0.15), "child", 1.0, 1.0, (0, 6, 1.5), 0.45,
        (
            (1, "{who} sốt cao 40 độ, co giật, mắt trợn ngược."),
            (2, "{who} sốt li bì, nôn, phát ban."),
            (3, "{who} sốt 38,5 độ, quấy khóc."),
        ),
    ),
    Complaint(
        "drowning", "Đuối nước", "Drowning", 0.01,
        (0.85, 0.15, 0.00), "daytime", 1.6, 1.3, (2, 60, 10), 0.25,
        (
            (1, "{who} bị đuối nước {place}, đã được vớt lên, tím tái."),
            (2, "{who} bị đuối nước {place}, đã tỉnh, ho sặc nước."),
        ),
        _WATER,
    ),
    Complaint(
        "other_illness", "Bệnh khác (đau bụng, sốt, mệt)", "Other illness", 0.20,
        (0.05, 0.35, 0.60), "daytime", 1.0, 1.0, (0, 95, 48), 0.50,
        (
            (1, "{who} đau bụng dữ dội, da xanh tái, vã mồ hôi."),
            (2, "{who} đau bụng dữ dội từ chiều, nôn."),
            (3, "{who} sốt, mệt lả, không ăn uống được."),
            (3, "{who} chóng mặt, huyết áp cao, cần đưa đi viện."),
        ),
    ),
)  # fmt: skip


# Mobile prefixes in use (10-digit numbers since 2018): Viettel, VinaPhone, MobiFone,
# Vietnamobile, Gmobile.
_PHONE_PREFIXES = (
    "032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097", "098",
    "081", "082", "083", "084", "085", "088", "091", "094",
    "070", "076", "077", "078", "079", "089", "090", "093",
    "052", "056", "058", "092", "059", "099",
)  # fmt: skip

# Lunar New Year's day (mùng 1 Tết), 2020–2030.
_TET = (
    date(2020, 1, 25),
    date(2021, 2, 12),
    date(2022, 2, 1),
    date(2023, 1, 22),
    date(2024, 2, 10),
    date(2025, 1, 29),
    date(2026, 2, 17),
    date(2027, 2, 6),
    date(2028, 1, 26),
    date(2029, 2, 13),
    date(2030, 2, 3),
)
_FIXED_HOLIDAYS = ((1, 1), (4, 30), (5, 1), (9, 1), (9, 2))
_DEFAULT_KIND_WEIGHT = {"phường": 3.0, "xã": 1.0, "đặc khu": 0.5}
_KM_PER_DEG_LAT = 111.32


def holiday_kind(day: date) -> str | None:
    """``"tet"`` from two days before the lunar new year to mùng 6, ``"holiday"`` on the
    fixed-date public holidays, else ``None``."""
    for tet in _TET:
        if -2 <= (day - tet).days <= 5:
            return "tet"
    if (day.month, day.day) in _FIXED_HOLIDAYS:
        return "holiday"
    return None


@dataclass(frozen=True, slots=True)
class EmergencyCall:
    """One call to 115 as the call-taker logged it."""

    call_id: str
    received_at: datetime  # aware, Vietnam time (UTC+7)
    province_code: str
    commune_code: str
    latitude: float
    longitude: float
    complaint: str  # Complaint.code
    priority: int  # 1 immediate (red), 2 urgent (yellow), 3 non-urgent (green)
    caller_phone: str
    patient_sex: str  # "male" / "female"
    patient_age: int | None
    note: str  # Vietnamese free text

    def csv_row(self) -> dict[str, str]:
        """The row :func:`write_calls_csv` writes."""
        return {
            "call_id": self.call_id,
            "received_at": self.received_at.isoformat(),
            "province_code": self.province_code,
            "commune_code": self.commune_code,
            "latitude": f"{self.latitude:.6f}",
            "longitude": f"{self.longitude:.6f}",
            "complaint": self.complaint,
            "priority": str(self.priority),
            "caller_phone": self.caller_phone,
            "patient_sex": {"male": "1", "female": "2"}.get(self.patient_sex, "3"),
            "patient_age": "" if self.patient_age is None else str(self.patient_age),
            "note": self.note,
        }


_CSV_SPEC: tuple[tuple[str, str, str], ...] = (
    ("call_id", "text", "`115-<province>-<yyyymmdd>-<nnnn>`, sequence per day"),
    ("received_at", "datetime", "ISO 8601 with offset, Vietnam time (`+07:00`)"),
    ("province_code", "2 digits", "province of the dispatch centre (2025 units)"),
    ("commune_code", "5 digits", "commune of the caller's location"),
    ("latitude", "decimal", "WGS 84 latitude of the caller's location, 6 decimals"),
    ("longitude", "decimal", "WGS 84 longitude, 6 decimals"),
    ("complaint", "code", "complaint category (`COMPLAINTS` codes, e.g. `traffic_accident`)"),
    ("priority", "1/2/3", "1 immediate (red), 2 urgent (yellow), 3 non-urgent (green)"),
    ("caller_phone", "10 digits", "caller's mobile number"),
    ("patient_sex", "1/2/3", "1 male, 2 female, 3 unknown (as `GIOI_TINH`)"),
    ("patient_age", "integer or empty", "patient's age in years as reported"),
    ("note", "text", "call-taker's free-text note in Vietnamese"),
)

CALLS_CSV_COLUMNS: tuple[str, ...] = tuple(spec[0] for spec in _CSV_SPEC)

CALLS_CSV_LAYOUT_DOC: str = (
    "115 call log export (one row per call). UTF-8 without BOM, comma-separated, header row,\n"
    "CRLF line ends, RFC 4180 quoting (notes may contain commas).\n\n"
    "| Column | Type | Meaning |\n|---|---|---|\n"
    + "".join(f"| `{c}` | {t} | {m} |\n" for c, t, m in _CSV_SPEC)
    + "\nComplaint codes: "
    + ", ".join(f"`{c.code}` ({c.name_vi})" for c in COMPLAINTS)
    + ".\n"
)


# --------------------------------------------------------------------------- geography


@dataclass(frozen=True, slots=True)
class _Place:
    commune: Commune
    latitude: float
    longitude: float
    radius_km: float


@cache
def _places(province_code: str) -> tuple[_Place, ...]:
    """Reference point and radius of every commune of the province."""
    units = communes(province_code)
    if not units:
        raise ValueError(f"unknown province code {province_code!r}")
    places: list[_Place] = []
    for unit in units:
        geo = commune_geo(unit.code)
        if geo is None:
            raise ValueError(f"no coordinates for commune {unit.code}")
        radius = math.sqrt(max(geo.area_km2 or 30.0, 1.0) / math.pi)
        places.append(_Place(unit, geo.latitude, geo.longitude, radius))
    return tuple(places)


def _jitter(rng: random.Random, place: _Place) -> tuple[float, float]:
    """A point near the centroid: Gaussian with σ = radius/2, clipped to the radius."""
    dist = min(abs(rng.gauss(0.0, place.radius_km / 2)), place.radius_km)
    angle = rng.uniform(0.0, 2 * math.pi)
    dlat = dist * math.cos(angle) / _KM_PER_DEG_LAT
    dlon = dist * math.sin(angle) / (_KM_PER_DEG_LAT * math.cos(math.radians(place.latitude)))
    return round(place.latitude + dlat, 6), round(place.longitude + dlon, 6)


# --------------------------------------------------------------------------- generation


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method, split into chunks so exp(-λ) never underflows."""
    count = 0
    while lam > 0:
        chunk = min(lam, 30.0)
        lam -= chunk
        limit, product = math.exp(-chunk), rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
    return count


def _weighted(rng: random.Random, items: tuple[float, ...]) -> int:
    return rng.choices(range(len(items)), weights=items)[0]


def _who(sex: str, age: int | None) -> str:
    """How a call-taker would describe the patient in a note."""
    if age is None:
        return "nam giới không rõ tuổi" if sex == "male" else "nữ giới không rõ tuổi"
    if age < 1:
        return "bé trai sơ sinh" if sex == "male" else "bé gái sơ sinh"
    if age < 16:
        return f"bé {'trai' if sex == 'male' else 'gái'} {age} tuổi"
    if age >= 60:
        return f"{'cụ ông' if sex == 'male' else 'cụ bà'} khoảng {age} tuổi"
    return f"{'nam' if sex == 'male' else 'nữ'} khoảng {age} tuổi"


def _day_factor(complaint: Complaint, day: date, holidays: bool) -> float:
    """Weekend multiplier normalised so the weekly mean is 1, times the holiday multiplier."""
    weekly_mean = (5 + 2 * complaint.weekend) / 7
    factor = (complaint.weekend if day.weekday() >= 5 else 1.0) / weekly_mean
    if holidays and holiday_kind(day) is not None:
        factor *= complaint.holiday
    return factor


def emergency_calls(
    province_code: str,
    start: date,
    days: int,
    population: int,
    seed: int,
    *,
    commune_weights: Mapping[str, float] | None = None,
    rate_per_100k: float = DEFAULT_RATE_PER_100K,
    holidays: bool = True,
) -> Iterator[EmergencyCall]:
    """Calls to the province's 115 centre from ``start`` for ``days`` days, in time order.

    Deterministic from (province, seed, arguments). ``commune_weights`` (commune code →
    relative weight, e.g. population) overrides the default urban/rural weights; communes it
    leaves out get no calls. ValueError for an unknown province or no positive weight.
    """
    places = _places(province_code)
    if commune_weights is None:
        weights = [_DEFAULT_KIND_WEIGHT.get(p.commune.kind, 1.0) for p in places]
    else:
        weights = [max(0.0, float(commune_weights.get(p.commune.code, 0.0))) for p in places]
    if not any(w > 0 for w in weights):
        raise ValueError("no commune has a positive weight")
    rng = random.Random(f"emergency:{province_code}:{seed}")
    hour_weights = {key: tuple(w / sum(ws) for w in ws) for key, ws in _HOURS.items()}
    base = population / 100_000 * rate_per_100k
    for offset in range(days):
        day = start + timedelta(days=offset)
        pending: list[tuple[int, Complaint]] = []
        for complaint in COMPLAINTS:
            daily = base * complaint.share * _day_factor(complaint, day, holidays)
            for hour, share in enumerate(hour_weights[complaint.hours]):
                for _ in range(_poisson(rng, daily * share)):
                    pending.append((hour * 3600 + rng.randrange(3600), complaint))
        pending.sort(key=lambda item: (item[0], item[1].code))
        for seq, (second, complaint) in enumerate(pending, start=1):
            yield _call(rng, province_code, day, seq, second, complaint, places, weights)


def _call(
    rng: random.Random,
    province_code: str,
    day: date,
    seq: int,
    second: int,
    complaint: Complaint,
    places: tuple[_Place, ...],
    weights: list[float],
) -> EmergencyCall:
    place = rng.choices(places, weights=weights)[0]
    lat, lon = _jitter(rng, place)
    sex = "female" if rng.random() < complaint.female else "male"
    low, high, mode = complaint.age
    age: int | None = int(rng.triangular(low, high, mode))
    if complaint.age[1] > 16 and rng.random() < 0.05:
        age = None  # the caller does not know an adult stranger's age
    priority = _weighted(rng, complaint.priority) + 1
    templates = [t for p, t in complaint.notes if p == priority] or [t for _, t in complaint.notes]
    template = templates[rng.randrange(len(templates))]
    place_words = complaint.places or _PLACES
    note = template.format(who=_who(sex, age), age=age or "không rõ", place=rng.choice(place_words))
    note = note[0].upper() + note[1:]
    phone = rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(10**7):07d}"
    received = datetime.combine(day, time(second // 3600, second // 60 % 60, second % 60), VN_TZ)
    return EmergencyCall(
        call_id=f"115-{province_code}-{day:%Y%m%d}-{seq:04d}",
        received_at=received,
        province_code=province_code,
        commune_code=place.commune.code,
        latitude=lat,
        longitude=lon,
        complaint=complaint.code,
        priority=priority,
        caller_phone=phone,
        patient_sex=sex,
        patient_age=age,
        note=note,
    )


# --------------------------------------------------------------------------- writers


def write_calls_csv(
    calls: Iterable[EmergencyCall],
    path_or_handle: str | Path | IO[str],
    *,
    header: bool = True,
) -> int:
    """Write calls in the documented layout (:data:`CALLS_CSV_LAYOUT_DOC`); returns the count."""
    return write_rows(calls, path_or_handle, CALLS_CSV_COLUMNS, header=header)


def calls_csv_text(calls: Iterable[EmergencyCall]) -> str:
    """The CSV as a string (for tests and small exports)."""
    return rows_text(calls, CALLS_CSV_COLUMNS)
