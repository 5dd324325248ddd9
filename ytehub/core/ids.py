"""Check and decode Vietnamese identifiers: CCCD/CMND, BHYT card, BHXH number, facility code.

Pure functions, no I/O. Each check returns an :class:`IdCheck` with a stable error ``code``
and the precise reason in Vietnamese and English, so a clerk can fix the exact character.

Facts used (from the project's reference notes):

* **CCCD / số định danh cá nhân** (Thông tư 07/2016/TT-BCA): 12 digits.
  Digits 1–3 are the place of birth registration: ``0`` + the 2-digit code of one of the
  (pre-2025) 63 provinces for people born in Vietnam; a code not starting with ``0`` is a
  country code for people born abroad. Digit 4 encodes century and sex: even = male,
  odd = female, century base = (d // 2 + 19) × 100. Digits 5–6 are the last two digits of the
  birth year; digits 7–12 are random. There is no check digit. The legacy CMND has 9 digits
  and encodes nothing we decode.
* **Mã thẻ BHYT** (QĐ 4750/QĐ-BYT, field MA_THE_BHYT, 15 characters): 2-letter beneficiary
  (object) code + 1-digit benefit level 1–5 + 2-digit province code of the issuing BHXH +
  the 10-digit social-insurance number (mã số BHXH). The BHXH card lookup reports errors by
  character position (its error codes 052/053), so our reasons name positions the same way.
* **Mã số BHXH**: 10 digits, not all zeros.
* **Mã cơ sở KBCB**: 5 digits, the first two conventionally the province code.

Positions in reasons are 1-based and count characters of the normalised value (after
surrounding whitespace is stripped). Characters that can never occur (spaces, dots, dashes
inside the value) are reported before the length, because "character 4 is a space" tells the
clerk what to fix while "got 14 characters" does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from ytehub.core.errors import DomainError, Text

__all__ = [
    "BHYT_OBJECT_CODES",
    "BHYT_PROVINCE_CODES",
    "PROVINCE_CODES_63",
    "IdCheck",
    "IdKind",
    "check_bhxh",
    "check_bhyt",
    "check_cccd",
    "check_facility_code",
    "make_bhyt",
    "make_cccd",
]

IdKind = Literal["cccd", "cmnd", "bhyt", "bhxh", "facility"]
Sex = Literal["male", "female"]

# The 63 province codes in use before the 2025 merger; CCCD and BHYT numbers issued under
# them keep these codes for life, so validation uses this list, not the current 34 provinces.
PROVINCE_CODES_63: tuple[str, ...] = (
    "01", "02", "04", "06", "08", "10", "11", "12", "14", "15", "17", "19", "20", "22", "24",
    "25", "26", "27", "30", "31", "33", "34", "35", "36", "37", "38", "40", "42", "44", "45",
    "46", "48", "49", "51", "52", "54", "56", "58", "60", "62", "64", "66", "67", "68", "70",
    "72", "74", "75", "77", "79", "80", "82", "83", "84", "86", "87", "89", "91", "92", "93",
    "94", "95", "96",
)  # fmt: skip

# UNCONFIRMED: 97 and 98 are understood to be the BHXH of the Ministry of Defence (BQP) and
# the Ministry of Public Security (BCA); accepted on cards until confirmed against BHXH VN.
BHYT_PROVINCE_CODES: tuple[str, ...] = (*PROVINCE_CODES_63, "97", "98")

BHYT_OBJECT_CODES: tuple[str, ...] = (
    "DN", "HX", "CH", "NN", "TK", "HC", "XK", "HT", "TB", "NO", "CT", "XB", "TN", "CS", "QN",
    "CA", "CY", "XN", "MS", "CC", "CK", "CB", "KC", "HD", "TE", "BT", "HN", "DT", "DK", "XD",
    "TS", "TC", "TQ", "TV", "TA", "TY", "HG", "LS", "PV", "CN", "HS", "SV", "GB", "GD",
)  # fmt: skip

_PROVINCES = frozenset(PROVINCE_CODES_63)
_BHYT_PROVINCES = frozenset(BHYT_PROVINCE_CODES)
_OBJECT_CODES = frozenset(BHYT_OBJECT_CODES)
_DIGITS = frozenset("0123456789")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SEX_VI: dict[str, str] = {"male": "nam", "female": "nữ"}

CCCD_LENGTH = 12
CMND_LENGTH = 9
BHYT_LENGTH = 15
BHXH_LENGTH = 10
FACILITY_LENGTH = 5


@dataclass(frozen=True, slots=True)
class IdCheck:
    """Outcome of one identifier check: valid or not, why, and what the number encodes.

    ``details`` holds the decoded parts (see each ``check_*`` function); on a character error
    it holds ``position`` (1-based) and ``character``. Decoded parts are kept even when the
    number is invalid only because it disagrees with the record, so the UI can show both.
    """

    kind: IdKind
    value: str
    valid: bool
    code: str | None = None
    reason: Text | None = None
    legacy: bool = False
    details: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_error(self, field_name: str | None = None) -> DomainError:
        """The :class:`DomainError` to raise for an invalid check (status 422)."""
        if self.valid or self.code is None or self.reason is None:
            raise ValueError("to_error() called on a valid IdCheck")
        return DomainError(
            code=self.code, message=self.reason, status=422, field=field_name, value=self.value
        )


def _show(ch: str) -> str:
    """Render a character so that invisible ones (space, tab, NBSP) are still identifiable."""
    if ch.isprintable() and not ch.isspace():
        return f"'{ch}' (U+{ord(ch):04X})"
    return f"U+{ord(ch):04X}"


def _first_not_in(value: str, allowed: frozenset[str]) -> int | None:
    """0-based index of the first character outside ``allowed``, or None."""
    for i, ch in enumerate(value):
        if ch not in allowed:
            return i
    return None


def _fail(
    kind: IdKind, value: str, code: str, reason: Text, details: dict[str, Any] | None = None
) -> IdCheck:
    return IdCheck(kind, value, False, code, reason, details=details or {})


def _bad_char(kind: IdKind, value: str, code: str, index: int, what: Text) -> IdCheck:
    """Failure naming the 1-based position and the character, as the BHXH lookup does."""
    ch = value[index]
    reason = Text(
        vi=f"Ký tự thứ {index + 1} ({_show(ch)}) không hợp lệ: {what.vi}",
        en=f"Character {index + 1} ({_show(ch)}) is invalid: {what.en}",
    )
    return _fail(kind, value, code, reason, {"position": index + 1, "character": ch})


def _century_digit(sex: str, birth_year: int) -> int:
    return (birth_year // 100 - 19) * 2 + (1 if sex == "female" else 0)


# --------------------------------------------------------------------------- CCCD / CMND


def check_cccd(
    value: str,
    *,
    sex: Sex | None = None,
    birth_year: int | None = None,
    today: date | None = None,
) -> IdCheck:
    """Check a 12-digit CCCD (or a legacy 9-digit CMND) and compare it with the record.

    ``sex`` ("male"/"female") and ``birth_year`` are what the person's record says; when given,
    a disagreement with the number is reported, because it usually means a typo in one of them.
    ``today`` is the reference date for rejecting a birth year in the future.

    Details of a decoded CCCD: ``place_code`` (digits 1–3), ``born_abroad``, ``province_code``
    (2 digits, None if born abroad), ``country_code`` (digits 1–3 if born abroad, else None),
    ``sex``, ``birth_year``, ``serial`` (digits 7–12). A CMND decodes nothing.
    """
    if sex is not None and sex not in _SEX_VI:
        raise ValueError(f"sex must be 'male', 'female' or None, not {sex!r}")
    v = value.strip()

    bad = _first_not_in(v, _DIGITS)
    if bad is not None:
        return _bad_char(
            "cccd",
            v,
            "cccd.not_digits",
            bad,
            Text(
                vi="số CCCD/CMND chỉ gồm chữ số, không có khoảng trắng, dấu chấm hay gạch ngang",
                en="a CCCD/CMND number has digits only, no spaces, dots or dashes",
            ),
        )

    if len(v) == CMND_LENGTH:
        return IdCheck("cmnd", v, True, legacy=True)
    if len(v) != CCCD_LENGTH:
        return _fail(
            "cccd",
            v,
            "cccd.length",
            Text(
                vi=f"Số CCCD phải có 12 chữ số (hoặc 9 chữ số nếu là CMND cũ); "
                f"số đã nhập có {len(v)} chữ số",
                en=f"A CCCD number has 12 digits (or 9 for a legacy CMND); got {len(v)}",
            ),
        )

    place = v[:3]
    born_abroad = place[0] != "0"
    century = int(v[3])
    decoded_sex: Sex = "female" if century % 2 else "male"
    decoded_year = (century // 2 + 19) * 100 + int(v[4:6])
    details: dict[str, Any] = {
        "place_code": place,
        "born_abroad": born_abroad,
        "province_code": None if born_abroad else place[1:],
        "country_code": place if born_abroad else None,
        "sex": decoded_sex,
        "birth_year": decoded_year,
        "serial": v[6:],
    }

    if not born_abroad and place[1:] not in _PROVINCES:
        return _fail(
            "cccd",
            v,
            "cccd.unknown_province",
            Text(
                vi=f"Mã nơi đăng ký khai sinh {place} (ký tự thứ 1–3): mã tỉnh {place[1:]} "
                "không thuộc 63 mã tỉnh",
                en=f"Birth registration code {place} (characters 1–3): province code "
                f"{place[1:]} is not one of the 63 province codes",
            ),
            details,
        )

    ref = today or date.today()
    if decoded_year > ref.year:
        return _fail(
            "cccd",
            v,
            "cccd.future_birth_year",
            Text(
                vi=f"CCCD ghi năm sinh {decoded_year} (ký tự thứ 4–6), sau năm hiện tại {ref.year}",
                en=f"CCCD says born {decoded_year} (characters 4–6), after the current year "
                f"{ref.year}",
            ),
            details,
        )

    if sex is not None and sex != decoded_sex:
        return _fail(
            "cccd",
            v,
            "cccd.sex_mismatch",
            Text(
                vi=f"CCCD ghi giới tính {_SEX_VI[decoded_sex]} (ký tự thứ 4 là {v[3]}), "
                f"hồ sơ ghi {_SEX_VI[sex]}",
                en=f"CCCD says {decoded_sex} (character 4 is {v[3]}), record says {sex}",
            ),
            details,
        )

    if birth_year is not None and birth_year != decoded_year:
        return _fail(
            "cccd",
            v,
            "cccd.birth_year_mismatch",
            Text(
                vi=f"CCCD ghi năm sinh {decoded_year}, hồ sơ ghi {birth_year}",
                en=f"CCCD says born {decoded_year}, record says {birth_year}",
            ),
            details,
        )

    return IdCheck("cccd", v, True, details=details)


def make_cccd(province_code: str, sex: Sex, birth_year: int, serial: int) -> str:
    """Build a CCCD for someone born in Vietnam; used by tests and the synthetic population.

    Raises ValueError for parts that cannot be encoded, so generated data is always valid.
    """
    if province_code not in _PROVINCES:
        raise ValueError(f"unknown province code {province_code!r}")
    if sex not in _SEX_VI:
        raise ValueError(f"sex must be 'male' or 'female', not {sex!r}")
    if not 1900 <= birth_year <= 2399:
        raise ValueError(f"birth year {birth_year} cannot be encoded (1900–2399)")
    if not 0 <= serial <= 999_999:
        raise ValueError(f"serial {serial} must be in 0..999999")
    return f"0{province_code}{_century_digit(sex, birth_year)}{birth_year % 100:02d}{serial:06d}"


# --------------------------------------------------------------------------- BHYT card


def _upper_ascii(value: str) -> str:
    """Upper-case a–z only: str.upper() would turn 'ß' into 'SS' and shift positions."""
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in value)


def check_bhyt(value: str) -> IdCheck:
    """Check a 15-character BHYT card number and decode its parts.

    Lower-case letters are accepted and upper-cased; ``value`` is the normalised card number.
    Details: ``object_code``, ``benefit_level`` (int), ``province_code``, ``bhxh_number``.
    """
    v = _upper_ascii(value.strip())

    bad = _first_not_in(v, _DIGITS | _UPPER)
    if bad is not None:
        return _bad_char(
            "bhyt",
            v,
            "bhyt.bad_character",
            bad,
            Text(
                vi="mã thẻ BHYT chỉ gồm chữ cái và chữ số, không có khoảng trắng hay dấu",
                en="a BHYT card number has letters and digits only, no spaces or punctuation",
            ),
        )
    if len(v) != BHYT_LENGTH:
        return _fail(
            "bhyt",
            v,
            "bhyt.length",
            Text(
                vi=f"Mã thẻ BHYT phải có 15 ký tự; mã đã nhập có {len(v)} ký tự",
                en=f"A BHYT card number has 15 characters; got {len(v)}",
            ),
        )

    bad = _first_not_in(v[:2], _UPPER)
    if bad is not None:
        return _bad_char(
            "bhyt",
            v,
            "bhyt.object_code",
            bad,
            Text(
                vi="ký tự thứ 1–2 là mã đối tượng, phải là chữ cái",
                en="characters 1–2 are the object code and must be letters",
            ),
        )
    object_code = v[:2]
    if object_code not in _OBJECT_CODES:
        return _fail(
            "bhyt",
            v,
            "bhyt.object_code",
            Text(
                vi=f"Mã đối tượng {object_code} (ký tự thứ 1–2) không có trong danh mục",
                en=f"Object code {object_code} (characters 1–2) is not a known beneficiary code",
            ),
            {"position": 1, "object_code": object_code},
        )

    if v[2] not in "12345":
        return _bad_char(
            "bhyt",
            v,
            "bhyt.benefit_level",
            2,
            Text(
                vi="ký tự thứ 3 là mức hưởng, phải là chữ số từ 1 đến 5",
                en="character 3 is the benefit level and must be a digit from 1 to 5",
            ),
        )

    bad = _first_not_in(v[3:5], _DIGITS)
    if bad is not None:
        return _bad_char(
            "bhyt",
            v,
            "bhyt.province",
            3 + bad,
            Text(
                vi="ký tự thứ 4–5 là mã tỉnh, phải là chữ số",
                en="characters 4–5 are the province code and must be digits",
            ),
        )
    province = v[3:5]
    if province not in _BHYT_PROVINCES:
        return _fail(
            "bhyt",
            v,
            "bhyt.province",
            Text(
                vi=f"Mã tỉnh {province} (ký tự thứ 4–5) không thuộc danh sách mã tỉnh của BHXH",
                en=f"Province code {province} (characters 4–5) is not a BHXH province code",
            ),
            {"position": 4, "province_code": province},
        )

    bad = _first_not_in(v[5:], _DIGITS)
    if bad is not None:
        return _bad_char(
            "bhyt",
            v,
            "bhyt.bhxh_number",
            5 + bad,
            Text(
                vi="ký tự thứ 6–15 là mã số BHXH, phải là chữ số",
                en="characters 6–15 are the social-insurance number and must be digits",
            ),
        )
    bhxh_number = v[5:]
    if bhxh_number == "0" * BHXH_LENGTH:
        return _fail(
            "bhyt",
            v,
            "bhyt.bhxh_number",
            Text(
                vi=f"Mã số BHXH {bhxh_number} (ký tự thứ 6–15) không được toàn số 0",
                en=f"Social-insurance number {bhxh_number} (characters 6–15) cannot be all zeros",
            ),
            {"position": 6},
        )

    return IdCheck(
        "bhyt",
        v,
        True,
        details={
            "object_code": object_code,
            "benefit_level": int(v[2]),
            "province_code": province,
            "bhxh_number": bhxh_number,
        },
    )


def make_bhyt(object_code: str, benefit_level: int, province_code: str, bhxh_number: str) -> str:
    """Build a BHYT card number; raises ValueError (with the check's reason) if invalid."""
    card = f"{object_code}{benefit_level}{province_code}{bhxh_number}"
    result = check_bhyt(card)
    if not result.valid or result.value != card:
        reason = result.reason.en if result.reason else "not in canonical upper-case form"
        raise ValueError(f"cannot build BHYT card {card!r}: {reason}")
    return card


# --------------------------------------------------------------------------- BHXH number


def check_bhxh(value: str) -> IdCheck:
    """Check a 10-digit social-insurance number (mã số BHXH). Nothing is decoded."""
    v = value.strip()
    bad = _first_not_in(v, _DIGITS)
    if bad is not None:
        return _bad_char(
            "bhxh",
            v,
            "bhxh.not_digits",
            bad,
            Text(vi="mã số BHXH chỉ gồm chữ số", en="a social-insurance number has digits only"),
        )
    if len(v) != BHXH_LENGTH:
        return _fail(
            "bhxh",
            v,
            "bhxh.length",
            Text(
                vi=f"Mã số BHXH phải có 10 chữ số; mã đã nhập có {len(v)} chữ số",
                en=f"A social-insurance number has 10 digits; got {len(v)}",
            ),
        )
    if v == "0" * BHXH_LENGTH:
        return _fail(
            "bhxh",
            v,
            "bhxh.all_zero",
            Text(
                vi=f"Mã số BHXH {v} không được toàn số 0",
                en=f"Social-insurance number {v} cannot be all zeros",
            ),
        )
    return IdCheck("bhxh", v, True)


# --------------------------------------------------------------------------- facility code


def check_facility_code(value: str) -> IdCheck:
    """Check a 5-digit health-facility code (mã cơ sở KBCB).

    Details: ``province_code`` (first two digits).
    """
    v = value.strip()
    bad = _first_not_in(v, _DIGITS)
    if bad is not None:
        return _bad_char(
            "facility",
            v,
            "facility.not_digits",
            bad,
            Text(vi="mã cơ sở KBCB chỉ gồm chữ số", en="a facility code has digits only"),
        )
    if len(v) != FACILITY_LENGTH:
        return _fail(
            "facility",
            v,
            "facility.length",
            Text(
                vi=f"Mã cơ sở KBCB phải có 5 chữ số; mã đã nhập có {len(v)} chữ số",
                en=f"A facility code has 5 digits; got {len(v)}",
            ),
        )
    # UNCONFIRMED: the first two digits are conventionally the province code; unknown
    # prefixes are decoded but not rejected until the rule is confirmed.
    return IdCheck("facility", v, True, details={"province_code": v[:2]})
