"""Tests for ytehub.core.ids: round trips, every error code, bilingual reasons."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ytehub.core.errors import DomainError
from ytehub.core.ids import (
    BHYT_OBJECT_CODES,
    BHYT_PROVINCE_CODES,
    PROVINCE_CODES_63,
    IdCheck,
    check_bhxh,
    check_bhyt,
    check_cccd,
    check_facility_code,
    make_bhyt,
    make_cccd,
)

TODAY = date(2025, 6, 1)
DIGITS = "0123456789"

provinces = st.sampled_from(PROVINCE_CODES_63)
sexes = st.sampled_from(["male", "female"])
birth_years = st.integers(min_value=1900, max_value=TODAY.year)
serials = st.integers(min_value=0, max_value=999_999)
bhxh_numbers = st.text(DIGITS, min_size=10, max_size=10).filter(lambda s: s != "0" * 10)


def assert_reason_mentions(result: IdCheck, *parts: str) -> None:
    """The result is invalid and both languages are non-empty and name each offending part."""
    assert not result.valid
    assert result.reason is not None
    assert result.reason.vi.strip()
    assert result.reason.en.strip()
    for part in parts:
        assert part in result.reason.vi, (part, result.reason.vi)
        assert part in result.reason.en, (part, result.reason.en)


# --------------------------------------------------------------------------- reference lists


def test_reference_lists_have_expected_sizes_and_no_duplicates() -> None:
    assert len(PROVINCE_CODES_63) == len(set(PROVINCE_CODES_63)) == 63
    assert set(BHYT_PROVINCE_CODES) == {*PROVINCE_CODES_63, "97", "98"}
    assert len(BHYT_OBJECT_CODES) == len(set(BHYT_OBJECT_CODES))
    assert all(len(c) == 2 and c.isalpha() and c.isupper() for c in BHYT_OBJECT_CODES)


# --------------------------------------------------------------------------- CCCD properties


@given(provinces, sexes, birth_years, serials)
def test_make_cccd_round_trip(province: str, sex: str, year: int, serial: int) -> None:
    cccd = make_cccd(province, sex, year, serial)
    assert len(cccd) == 12 and cccd.isdigit()
    result = check_cccd(cccd, sex=sex, birth_year=year, today=TODAY)
    assert result.valid, result.reason
    assert result.kind == "cccd"
    assert result.code is None and result.reason is None
    assert not result.legacy
    assert result.details == {
        "place_code": "0" + province,
        "born_abroad": False,
        "province_code": province,
        "country_code": None,
        "sex": sex,
        "birth_year": year,
        "serial": f"{serial:06d}",
    }


@given(provinces, sexes, birth_years, serials)
def test_flipping_sex_digit_parity_gives_sex_mismatch(
    province: str, sex: str, year: int, serial: int
) -> None:
    cccd = make_cccd(province, sex, year, serial)
    flipped = cccd[:3] + str(int(cccd[3]) ^ 1) + cccd[4:]
    result = check_cccd(flipped, sex=sex, birth_year=year, today=TODAY)
    assert result.code == "cccd.sex_mismatch"
    other = "female" if sex == "male" else "male"
    assert result.details["sex"] == other
    assert result.details["birth_year"] == year  # parity flip keeps the century
    vi = {"male": "nam", "female": "nữ"}
    assert result.reason is not None
    assert result.reason.en.startswith(f"CCCD says {other}")
    assert result.reason.en.endswith(f"record says {sex}")
    assert f"giới tính {vi[other]}" in result.reason.vi
    assert result.reason.vi.endswith(f"hồ sơ ghi {vi[sex]}")


@given(st.text(min_size=12, max_size=12))
def test_twelve_chars_with_a_non_digit_is_rejected(text: str) -> None:
    assume(text == text.strip())
    assume(any(c not in DIGITS for c in text))
    result = check_cccd(text, today=TODAY)
    assert result.code == "cccd.not_digits"
    first_bad = next(i for i, c in enumerate(text) if c not in DIGITS)
    assert result.details["position"] == first_bad + 1
    assert result.details["character"] == text[first_bad]
    assert_reason_mentions(result, str(first_bad + 1))


@given(st.text(DIGITS, max_size=30).filter(lambda s: len(s) not in (9, 12)))
def test_cccd_wrong_length_is_rejected(digits: str) -> None:
    result = check_cccd(digits, today=TODAY)
    assert result.code == "cccd.length"
    assert_reason_mentions(result, str(len(digits)))


# --------------------------------------------------------------------------- CCCD examples


def test_cccd_examples_decode() -> None:
    result = check_cccd("  001087012345 ", today=TODAY)
    assert result.valid
    assert result.value == "001087012345"
    assert result.details["sex"] == "male"
    assert result.details["birth_year"] == 1987
    assert result.details["province_code"] == "01"

    result = check_cccd("079305000001", today=TODAY)  # 3 = female, 2000s
    assert result.valid
    assert result.details["sex"] == "female"
    assert result.details["birth_year"] == 2005
    assert result.details["province_code"] == "79"


@pytest.mark.parametrize(
    ("digit", "sex", "base"),
    [
        ("0", "male", 1900),
        ("1", "female", 1900),
        ("2", "male", 2000),
        ("3", "female", 2000),
        ("4", "male", 2100),
        ("5", "female", 2100),
        ("6", "male", 2200),
        ("7", "female", 2200),
        ("8", "male", 2300),
        ("9", "female", 2300),
    ],
)
def test_cccd_century_and_sex_digit(digit: str, sex: str, base: int) -> None:
    result = check_cccd(f"001{digit}42123456", today=date(2400, 1, 1))
    assert result.valid, result.reason
    assert result.details["sex"] == sex
    assert result.details["birth_year"] == base + 42


def test_cccd_born_abroad_keeps_country_code() -> None:
    result = check_cccd("840190123456", today=TODAY)
    assert result.valid
    assert result.details["born_abroad"] is True
    assert result.details["country_code"] == "840"
    assert result.details["province_code"] is None
    assert result.details["birth_year"] == 1990


def test_legacy_cmnd_accepted() -> None:
    result = check_cccd(" 012345678 ", sex="female", birth_year=1970, today=TODAY)
    assert result.valid
    assert result.kind == "cmnd"
    assert result.legacy is True
    assert result.value == "012345678"
    assert result.details == {}


@pytest.mark.parametrize(
    ("value", "position", "char"),
    [("001 087012345", 4, " "), ("001.087.012345", 4, "."), ("001-087-01234", 4, "-")],
)
def test_cccd_separators_rejected_with_position(value: str, position: int, char: str) -> None:
    result = check_cccd(value, today=TODAY)
    assert result.code == "cccd.not_digits"
    assert result.details == {"position": position, "character": char}
    assert_reason_mentions(result, f"{position} (", f"U+{ord(char):04X}")
    assert "Ký tự thứ 4" in result.reason.vi
    assert "Character 4" in result.reason.en


def test_cccd_non_ascii_digit_rejected() -> None:
    result = check_cccd("00108701234٥", today=TODAY)  # Arabic-Indic five passes str.isdigit
    assert result.code == "cccd.not_digits"
    assert result.details["position"] == 12


def test_cccd_length() -> None:
    result = check_cccd("00108701234", today=TODAY)
    assert result.code == "cccd.length"
    assert result.kind == "cccd"
    assert_reason_mentions(result, "11", "12")


def test_cccd_empty_is_length_zero() -> None:
    result = check_cccd("   ", today=TODAY)
    assert result.code == "cccd.length"
    assert result.value == ""
    assert_reason_mentions(result, "0")


@pytest.mark.parametrize("place", ["000", "003", "099"])
def test_cccd_unknown_province(place: str) -> None:
    result = check_cccd(f"{place}087012345", today=TODAY)
    assert result.code == "cccd.unknown_province"
    assert_reason_mentions(result, place, place[1:])


def test_cccd_future_birth_year() -> None:
    result = check_cccd("001287012345", today=TODAY)  # 2 = male, 2000s -> 2087
    assert result.code == "cccd.future_birth_year"
    assert result.details["birth_year"] == 2087
    assert_reason_mentions(result, "2087", "2025")
    # The same number is fine once the reference date has passed 2087.
    assert check_cccd("001287012345", today=date(2087, 1, 1)).valid


def test_cccd_current_year_is_not_future() -> None:
    assert check_cccd("001225012345", today=TODAY).valid


def test_cccd_sex_mismatch() -> None:
    result = check_cccd("001187012345", sex="male", today=TODAY)
    assert result.code == "cccd.sex_mismatch"
    assert result.reason is not None
    assert result.reason.en.startswith("CCCD says female")
    assert result.reason.en.endswith("record says male")
    assert "nữ" in result.reason.vi and "nam" in result.reason.vi
    assert result.details["sex"] == "female"  # decoded parts kept for the UI


def test_cccd_birth_year_mismatch() -> None:
    result = check_cccd("001087012345", birth_year=1978, today=TODAY)
    assert result.code == "cccd.birth_year_mismatch"
    assert result.reason is not None
    assert result.reason.en == "CCCD says born 1987, record says 1978"
    assert_reason_mentions(result, "1987", "1978")


def test_cccd_matching_record_is_valid() -> None:
    assert check_cccd("001187012345", sex="female", birth_year=1987, today=TODAY).valid


def test_cccd_rejects_unknown_sex_argument() -> None:
    with pytest.raises(ValueError, match="sex"):
        check_cccd("001087012345", sex="unknown", today=TODAY)  # type: ignore[arg-type]


def test_cccd_default_today_is_used() -> None:
    assert check_cccd("001087012345").valid


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("03", "male", 1990, 1), "province"),
        (("01", "other", 1990, 1), "sex"),
        (("01", "male", 1899, 1), "1899"),
        (("01", "male", 2400, 1), "2400"),
        (("01", "male", 1990, 1_000_000), "serial"),
        (("01", "male", 1990, -1), "serial"),
    ],
)
def test_make_cccd_rejects_bad_parts(args: tuple[str, str, int, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_cccd(*args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- BHYT properties


@given(
    st.sampled_from(BHYT_OBJECT_CODES),
    st.integers(min_value=1, max_value=5),
    st.sampled_from(BHYT_PROVINCE_CODES),
    bhxh_numbers,
)
def test_make_bhyt_round_trip(obj: str, level: int, province: str, bhxh: str) -> None:
    card = make_bhyt(obj, level, province, bhxh)
    assert len(card) == 15
    result = check_bhyt(card)
    assert result.valid, result.reason
    assert result.kind == "bhyt"
    assert result.value == card
    assert result.details == {
        "object_code": obj,
        "benefit_level": level,
        "province_code": province,
        "bhxh_number": bhxh,
    }
    lower = check_bhyt(f"  {card.lower()} ")
    assert lower.valid
    assert lower.value == card
    assert lower.details == result.details


@given(
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" + DIGITS, max_size=30).filter(
        lambda s: len(s) != 15
    )
)
def test_bhyt_wrong_length_is_rejected(text: str) -> None:
    result = check_bhyt(text)
    assert result.code == "bhyt.length"
    assert_reason_mentions(result, str(len(text)), "15")


# --------------------------------------------------------------------------- BHYT examples


def test_bhyt_examples() -> None:
    result = check_bhyt("DN4010123456789")
    assert result.valid
    assert result.details == {
        "object_code": "DN",
        "benefit_level": 4,
        "province_code": "01",
        "bhxh_number": "0123456789",
    }
    newborn = check_bhyt("te1790000000042")  # temporary card for a newborn
    assert newborn.valid
    assert newborn.value == "TE1790000000042"
    assert newborn.details["object_code"] == "TE"
    assert newborn.details["benefit_level"] == 1


@pytest.mark.parametrize("province", ["97", "98"])
def test_bhyt_defence_and_public_security_provinces(province: str) -> None:
    assert check_bhyt(f"QN1{province}0123456789").valid


def test_bhyt_bad_character() -> None:
    result = check_bhyt("DN4 010123456789")
    assert result.code == "bhyt.bad_character"
    assert result.details["position"] == 4
    assert "ký tự thứ 4" in result.reason.vi.lower()
    assert "character 4" in result.reason.en.lower()
    assert_reason_mentions(result, "U+0020")


def test_bhyt_letter_in_object_code_position() -> None:
    result = check_bhyt("D14010123456789")
    assert result.code == "bhyt.object_code"
    assert result.details["position"] == 2
    assert_reason_mentions(result, "2", "'1'")


def test_bhyt_unknown_object_code() -> None:
    result = check_bhyt("ZZ4010123456789")
    assert result.code == "bhyt.object_code"
    assert_reason_mentions(result, "ZZ", "1–2")


@pytest.mark.parametrize("level", ["0", "6", "9", "A"])
def test_bhyt_benefit_level(level: str) -> None:
    result = check_bhyt(f"DN{level}010123456789")
    assert result.code == "bhyt.benefit_level"
    assert result.details == {"position": 3, "character": level}
    assert "ký tự thứ 3" in result.reason.vi.lower()
    assert "character 3" in result.reason.en.lower()
    assert_reason_mentions(result, f"'{level}'")


def test_bhyt_province_not_digits() -> None:
    result = check_bhyt("DN40A0123456789")
    assert result.code == "bhyt.province"
    assert result.details["position"] == 5
    assert_reason_mentions(result, "5", "'A'")


@pytest.mark.parametrize("province", ["00", "03", "99", "63"])
def test_bhyt_unknown_province(province: str) -> None:
    result = check_bhyt(f"DN4{province}0123456789")
    assert result.code == "bhyt.province"
    assert_reason_mentions(result, province, "4–5")


def test_bhyt_bhxh_number_not_digits() -> None:
    result = check_bhyt("DN40101234X6789")
    assert result.code == "bhyt.bhxh_number"
    assert result.details["position"] == 11
    assert_reason_mentions(result, "11", "'X'")


def test_bhyt_bhxh_number_all_zero() -> None:
    result = check_bhyt("DN4010000000000")
    assert result.code == "bhyt.bhxh_number"
    assert_reason_mentions(result, "0000000000", "6–15")


def test_bhyt_upper_cases_ascii_only() -> None:
    # 'ß'.upper() is 'SS': normalising must not shift positions or change the length.
    result = check_bhyt("ßN4010123456789")
    assert result.code == "bhyt.bad_character"
    assert result.details["position"] == 1


def test_make_bhyt_rejects_invalid_parts() -> None:
    with pytest.raises(ValueError, match="ZZ"):
        make_bhyt("ZZ", 1, "01", "0123456789")
    with pytest.raises(ValueError, match="canonical"):
        make_bhyt("dn", 1, "01", "0123456789")
    with pytest.raises(ValueError, match="15"):
        make_bhyt("DN", 10, "01", "0123456789")


# --------------------------------------------------------------------------- BHXH number


@given(bhxh_numbers)
def test_bhxh_valid(number: str) -> None:
    result = check_bhxh(f" {number} ")
    assert result.valid
    assert result.kind == "bhxh"
    assert result.value == number


@given(st.text(DIGITS, max_size=30).filter(lambda s: len(s) != 10))
def test_bhxh_wrong_length_is_rejected(digits: str) -> None:
    result = check_bhxh(digits)
    assert result.code == "bhxh.length"
    assert_reason_mentions(result, str(len(digits)), "10")


def test_bhxh_all_zero() -> None:
    result = check_bhxh("0000000000")
    assert result.code == "bhxh.all_zero"
    assert_reason_mentions(result, "0000000000")


def test_bhxh_not_digits() -> None:
    result = check_bhxh("01234-6789")
    assert result.code == "bhxh.not_digits"
    assert result.details["position"] == 6
    assert_reason_mentions(result, "6", "'-'")


# --------------------------------------------------------------------------- facility code


def test_facility_valid() -> None:
    result = check_facility_code(" 01001 ")
    assert result.valid
    assert result.kind == "facility"
    assert result.value == "01001"
    assert result.details == {"province_code": "01"}


def test_facility_unknown_province_prefix_not_rejected() -> None:
    result = check_facility_code("03001")
    assert result.valid
    assert result.details["province_code"] == "03"


@given(st.text(DIGITS, max_size=20).filter(lambda s: len(s) != 5))
def test_facility_wrong_length_is_rejected(digits: str) -> None:
    result = check_facility_code(digits)
    assert result.code == "facility.length"
    assert_reason_mentions(result, str(len(digits)), "5")


def test_facility_not_digits() -> None:
    result = check_facility_code("01A01")
    assert result.code == "facility.not_digits"
    assert result.details["position"] == 3
    assert_reason_mentions(result, "3", "'A'")


# --------------------------------------------------------------------------- result object


def test_result_is_frozen_and_hashable() -> None:
    result = check_bhyt("DN4010123456789")
    with pytest.raises(AttributeError):
        result.valid = False  # type: ignore[misc]
    assert hash(result) == hash(check_bhyt("DN4010123456789"))


def test_to_error() -> None:
    error = check_bhxh("123").to_error("bhxh_number")
    assert isinstance(error, DomainError)
    assert error.code == "bhxh.length"
    assert error.status == 422
    assert error.field == "bhxh_number"
    assert error.value == "123"
    assert error.as_problem("en")["title"].startswith("A social-insurance number")
    with pytest.raises(ValueError):
        check_bhxh("0123456789").to_error()
