"""What facilities write down about a person: identity with realistic defects.

Each (person, facility) pair gets a stable :class:`PatientIdentity` — the same clerk's system
records the same person the same way on every visit — derived from the seed, so files are
reproducible. The defects are those the client registry must cope with; every applied defect
is kept in ``PatientIdentity.defects`` as ground truth.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import dataclass
from datetime import date

from ytehub.core import units
from ytehub.synth.model import Facility, PatientIdentity, Person

_STRIP = str.maketrans({"đ": "d", "Đ": "D"})
_MA_BN_SPACE = 10**10
_MA_BN_FACTOR = 7_919_384_221  # coprime with 10**10: distinct numbers, distinct ids
_VOWELS = "aeiouy"


@dataclass(frozen=True, slots=True)
class DefectRates:
    """Probability of each defect per (person, facility) record. Defaults give a province's
    typical data quality; set them all to 0 for clean data."""

    ascii_system: float = 0.08  # a facility whose software drops diacritics on every record
    no_diacritics: float = 0.04  # one clerk typing without diacritics
    name_typo: float = 0.03
    swapped_day_month: float = 0.01
    year_only: float = 0.02
    missing_cccd: float = 0.08
    legacy_cmnd: float = 0.03  # the old 9-digit id written instead of the CCCD, where one exists
    cccd_typo: float = 0.01
    legacy_address: float = 0.06  # pre-July-2025 province/district/commune codes
    duplicate_registration: float = 0.02  # a second patient id for the same person at a facility
    missing_phone: float = 0.15

    def scaled(self, factor: float) -> DefectRates:
        return DefectRates(
            **{name: min(1.0, getattr(self, name) * factor) for name in self.__slots__}
        )


def strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.translate(_STRIP))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.random()
    if kind < 0.4:  # swap two neighbours
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind < 0.7:  # drop a letter
        return word[:i] + word[i + 1 :]
    return word[:i] + rng.choice(_VOWELS) + word[i + 1 :]  # wrong vowel


def residence_address(person: Person) -> str:
    """Street, commune and province as written today (2025 units)."""
    commune = units.commune(person.commune_code)
    province = units.province(person.province_code)
    parts = (
        person.street_address,
        commune.name if commune else "",
        province.name if province else "",
    )
    return ", ".join(part for part in parts if part)


def birth_string(person: Person) -> str:
    """NGAY_SINH as QĐ 130 wants it: yyyymmddHHMM, 0000 for an unknown time."""
    day = person.birth_date
    time_part = f"{person.birth_time:%H%M}" if person.birth_time else "0000"
    return f"{day:%Y%m%d}{time_part}"


class IdentityFactory:
    """Stable, possibly defective identities per (person, facility)."""

    def __init__(self, seed: int, rates: DefectRates, period_start: date) -> None:
        self.seed = seed
        self.rates = rates
        self.period_start = period_start
        self._ascii_facilities: dict[str, bool] = {}

    def _rng(self, *parts: str) -> random.Random:
        digest = hashlib.blake2b("|".join((str(self.seed), *parts)).encode(), digest_size=8)
        return random.Random(int.from_bytes(digest.digest(), "big"))

    def _is_ascii_system(self, facility: Facility) -> bool:
        known = self._ascii_facilities.get(facility.code)
        if known is None:
            known = self._rng("ascii", facility.code).random() < self.rates.ascii_system
            self._ascii_facilities[facility.code] = known
        return known

    def ma_bn(self, person: Person, facility: Facility, registration: int = 0) -> str:
        """The facility's 10-digit patient id: unique within the facility (an affine bijection
        of the person's number, scrambled per facility), as a real patient register's is."""
        digest = hashlib.blake2b(f"{self.seed}|{facility.code}".encode(), digest_size=8).digest()
        salt = int.from_bytes(digest, "big") % _MA_BN_SPACE
        number = int(person.person_id.lstrip("P")) * 2 + registration
        return f"{(number * _MA_BN_FACTOR + salt) % _MA_BN_SPACE:010d}"

    def identities(self, person: Person, facility: Facility) -> list[PatientIdentity]:
        """One identity, or two when the person was registered twice at this facility."""
        rng = self._rng(person.person_id, facility.code)
        first = self._identity(person, facility, rng, 0)
        if rng.random() < self.rates.duplicate_registration:
            second = self._identity(person, facility, rng, 1)
            second.defects = (*second.defects, "duplicate_registration")
            return [first, second]
        return [first]

    def _identity(
        self, person: Person, facility: Facility, rng: random.Random, registration: int
    ) -> PatientIdentity:
        rates = self.rates
        defects: list[str] = []
        family, middle, given = person.family_name, person.middle_name, person.given_name
        if rng.random() < rates.name_typo:
            given = _typo(rng, given)
            defects.append("name_typo")
        name = " ".join(part for part in (family, middle, given) if part)
        if self._is_ascii_system(facility) or rng.random() < rates.no_diacritics:
            name = strip_diacritics(name).upper() if rng.random() < 0.5 else strip_diacritics(name)
            defects.append("no_diacritics")

        birth = birth_string(person)
        if rng.random() < rates.year_only:
            birth = f"{person.birth_date.year}00000000"
            defects.append("year_only")
        elif (
            person.birth_date.day <= 12
            and person.birth_date.day != person.birth_date.month
            and (rng.random() < rates.swapped_day_month)
        ):
            day = person.birth_date
            birth = f"{day.year}{day.day:02d}{day.month:02d}{birth[8:]}"
            defects.append("swapped_day_month")

        cccd = person.cccd or ""
        roll = rng.random()
        if roll < rates.missing_cccd:
            cccd = ""
            defects.append("missing_cccd")
        elif roll < rates.missing_cccd + rates.legacy_cmnd and person.cmnd:
            cccd = person.cmnd
            defects.append("legacy_cmnd")
        elif cccd and rng.random() < rates.cccd_typo:
            i = rng.randrange(6, 12)
            cccd = cccd[:i] + str((int(cccd[i]) + rng.randint(1, 9)) % 10) + cccd[i + 1 :]
            defects.append("cccd_typo")

        province_code, district_code, commune_code = person.province_code, "", person.commune_code
        address = residence_address(person)
        olds = units.predecessors(person.commune_code)
        if olds and rng.random() < rates.legacy_address:
            old = olds[rng.randrange(len(olds))]
            province_code, district_code, commune_code = (
                old.province_code,
                old.district_code,
                old.code,
            )
            address = ", ".join(
                (person.street_address, old.name, old.district_name, old.province_name)
            )
            defects.append("legacy_address")

        phone = person.phone or ""
        if phone and rng.random() < rates.missing_phone:
            phone = ""

        card = person.bhyt_card or ""
        valid_from = date(self.period_start.year, 1, 1)
        return PatientIdentity(
            person_id=person.person_id,
            facility_code=facility.code,
            ma_bn=self.ma_bn(person, facility, registration),
            ho_ten=name,
            so_cccd=cccd,
            ngay_sinh=birth,
            gioi_tinh="1" if person.sex == "male" else "2",
            ma_quoctich=person.nationality_code,
            ma_dantoc=person.ethnicity_code,
            ma_nghe_nghiep=person.occupation_code,
            dia_chi=address,
            matinh_cu_tru=province_code,
            mahuyen_cu_tru=district_code,
            maxa_cu_tru=commune_code,
            dien_thoai=phone,
            ma_the_bhyt=card,
            ma_dkbd=(person.bhyt_registered_facility or "") if card else "",
            gt_the_tu=f"{valid_from:%Y%m%d}" if card else "",
            gt_the_den=f"{valid_from.year + 1}1231" if card else "",
            defects=tuple(defects),
        )
