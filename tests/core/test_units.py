"""Tests for ytehub.core.units: current units, search, and legacy conversion."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter

import pytest

from ytehub.core import units
from ytehub.core.units import (
    AddressConversion,
    Commune,
    LegacyConversion,
    Province,
    commune,
    communes,
    convert_address,
    convert_legacy_commune,
    convert_legacy_province,
    fold,
    province,
    provinces,
    search,
)


def _legacy_rows() -> list[sqlite3.Row]:
    """The package's legacy table, read directly so the tests do not trust the module."""
    path = units._package_dir() / "data" / "dataset.db"
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute(
            "SELECT provinceCode, district, ward, wardCode, province FROM admin_units_legacy"
        ).fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------- current units


def test_counts() -> None:
    assert len(provinces()) == 34
    all_communes = communes()
    assert len(all_communes) == 3321
    assert Counter(c.kind for c in all_communes) == {"xã": 2621, "phường": 687, "đặc khu": 13}
    assert Counter(p.kind for p in provinces()) == {"tỉnh": 28, "thành phố trung ương": 6}


def test_codes_are_zero_padded_and_consistent() -> None:
    codes = {p.code for p in provinces()}
    for p in provinces():
        assert len(p.code) == 2 and p.code.isdigit()
    seen: set[str] = set()
    for c in communes():
        assert len(c.code) == 5 and c.code.isdigit()
        assert c.province_code in codes
        assert "  " not in c.name and c.name == c.name.strip()
        seen.add(c.code)
    assert len(seen) == 3321
    assert sum(len(communes(p.code)) for p in provinces()) == 3321


def test_lookups() -> None:
    assert province("79") == Province("79", "Thành phố Hồ Chí Minh", "thành phố trung ương")
    assert province("1") == province("01")
    assert province("01") is not None and province("01").name == "Thành phố Hà Nội"
    assert province("04") == Province("04", "Cao Bằng", "tỉnh")
    assert province("02") is None  # Hà Giang no longer exists
    assert province("") is None and province("abc") is None and province("123") is None
    assert commune("26740") == Commune("26740", "Phường Sài Gòn", "phường", "79")
    assert commune("640") == commune("00640")
    assert commune("00640") == Commune("00640", "Xã Thanh Trì", "xã", "01")
    assert commune("99999") is None and commune("x") is None
    assert communes("99") == [] and communes("zz") == []
    assert all(c.province_code == "01" for c in communes("01"))
    assert communes("1") == communes("01")


def test_results_are_copies() -> None:
    listing = provinces()
    listing.clear()
    assert len(provinces()) == 34


def test_fold() -> None:
    assert fold("Nguyễn Văn Đức") == "nguyen van duc"
    assert fold("ĐẮK LẮK") == "dak lak"
    assert fold("Hòa") == fold("Hoà") == fold("hoa")
    assert fold("Xã  Bắc   Đông Quan ") == "xa bac dong quan"
    # decomposed input folds like composed input
    assert fold("Vie\u0302\u0323t Nam") == "viet nam"


# ---------------------------------------------------------------- search


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("phuong sai gon", "26740"),
        ("sai gon", "26740"),
        ("Phường Sài Gòn", "26740"),
        ("PHƯỜNG SÀI GÒN", "26740"),
        ("P. Sài Gòn", "26740"),
        ("xa thanh tri", "00640"),
        ("Xã Thanh Trì", "00640"),
        ("tp ho chi minh", "79"),
        ("ho chi minh", "79"),
        ("Thành phố Hồ Chí Minh", "79"),
        ("tinh cao bang", "04"),
        ("cao bang", "04"),
        ("ea hleo", "24184"),
        ("Ea H'leo", "24184"),
        ("chan may lang co", "20152"),
    ],
)
def test_search_first_hit(query: str, code: str) -> None:
    hits = search(query)
    assert hits, query
    assert hits[0].code == code


def test_search_ranking() -> None:
    # exact before prefix before substring
    hits = search("an phu", limit=500)
    assert len(hits) > 10

    def rank(unit: Province | Commune) -> int:
        full = units._search_key(unit.name)
        names = (full, units._bare(full, unit.kind))
        if "an phu" in names:
            return 0
        return 1 if any(n.startswith("an phu") for n in names) else 2

    ranks = [rank(h) for h in hits]
    assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] == 2
    # diacritics in the query break ties between names that fold alike
    assert search("Xã Thạnh Trị")[0].name == "Xã Thạnh Trị"
    assert search("Xã Thanh Trì")[0].name == "Xã Thanh Trì"


def test_search_kind_word_must_agree() -> None:
    assert all(h.kind == "xã" for h in search("xa thanh"))
    assert search("phuong thanh tri") == []


def test_search_province_filter_and_limit() -> None:
    hits = search("an", province_code="79", limit=100)
    assert hits and all(isinstance(h, Commune) and h.province_code == "79" for h in hits)
    assert len(search("an", limit=5)) == 5
    assert search("an", limit=0) == []
    assert search("sai gon", province_code="01") == []
    assert search("sai gon", province_code="79")[0].code == "26740"
    assert search("") == [] and search("  ,.  ") == []


# ---------------------------------------------------------------- legacy


def test_convert_legacy_province() -> None:
    assert convert_legacy_province("74") == province("79")  # Bình Dương → TP HCM
    assert convert_legacy_province("02") == province("08")  # Hà Giang → Tuyên Quang
    assert convert_legacy_province("2") == province("08")
    assert convert_legacy_province("01") == province("01")
    assert convert_legacy_province("03") is None
    assert convert_legacy_province("xx") is None


def test_every_legacy_province_maps() -> None:
    old_codes = {r["provinceCode"] for r in _legacy_rows()}
    assert len(old_codes) == 63
    current = set(provinces())
    targets = set()
    for code in old_codes:
        new = convert_legacy_province(code)
        assert new in current, code
        targets.add(new)
    assert len(targets) == 34
    for p in provinces():  # each new province keeps the code of one predecessor
        assert convert_legacy_province(p.code) == p


def test_convert_legacy_commune_known() -> None:
    result = convert_legacy_commune("26740")
    assert isinstance(result, LegacyConversion)
    assert result.old_name == "Phường Bến Nghé"
    assert result.old_district_name == "Quận 1"
    assert result.old_province_code == "79"
    assert result.province.code == "79"
    assert result.commune == commune("26740")
    assert result.split is False and result.candidates == (result.commune,)
    assert result.mapped

    ngu_hiep = convert_legacy_commune("00667")  # Xã Ngũ Hiệp, split
    assert ngu_hiep is not None and ngu_hiep.old_name == "Xã Ngũ Hiệp"
    assert ngu_hiep.commune == commune("00640") and ngu_hiep.split
    assert ngu_hiep.candidates[0] == ngu_hiep.commune and len(ngu_hiep.candidates) > 1

    ha_giang = convert_legacy_commune("00688")  # Phường Quang Trung, TP Hà Giang
    assert ha_giang is not None and ha_giang.old_province_code == "02"
    assert ha_giang.province.code == "08"

    assert convert_legacy_commune("26740") == convert_legacy_commune("  26740 ")


def test_convert_legacy_commune_unknown() -> None:
    assert convert_legacy_commune("99999") is None
    assert convert_legacy_commune("") is None
    assert convert_legacy_commune("abcde") is None
    assert convert_legacy_commune("123456") is None


def test_every_legacy_commune_converts() -> None:
    current = {c.code: c for c in communes()}
    rows = [r for r in _legacy_rows() if r["wardCode"]]
    assert len(rows) > 10_000
    unmapped: list[str] = []
    split = 0
    reached: set[str] = set()
    for row in rows:
        result = convert_legacy_commune(row["wardCode"])
        assert result is not None, row["wardCode"]
        assert result.old_province_code == row["provinceCode"]
        assert result.province == convert_legacy_province(row["provinceCode"])
        if result.commune is None:
            unmapped.append(result.old_code)
            continue
        assert current[result.commune.code] == result.commune
        assert result.commune.province_code == result.province.code
        assert result.candidates[0] == result.commune  # default first
        assert len(set(result.candidates)) == len(result.candidates)
        assert all(current[c.code] == c for c in result.candidates)
        assert result.split == (len(result.candidates) > 1)
        split += result.split
        reached.update(c.code for c in result.candidates)
    print(f"legacy communes: {len(rows)}, unmapped: {len(unmapped)}, split: {split}")
    assert len(unmapped) <= len(rows) // 1000, unmapped[:20]
    assert split > 0
    assert len(reached) > 0.99 * len(current)


# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "province_code", "name", "code"),
    [
        ("Phường Bến Nghé, Quận 1, TP Hồ Chí Minh", "79", "Phường Sài Gòn", "26740"),
        ("Xã Ngũ Hiệp, Huyện Thanh Trì, Hà Nội", "01", "Xã Thanh Trì", "00640"),
        (
            "Phường Trần Phú, Thành phố Hải Dương, Hải Dương",
            "31",
            "Phường Lê Thanh Nghị",
            "10532",
        ),
        ("phuong ben nghe, quan 1, ho chi minh", "79", "Phường Sài Gòn", "26740"),
        ("Huyện Côn Đảo, Bà Rịa - Vũng Tàu", "79", "Đặc khu Côn Đảo", "26732"),
    ],
)
def test_convert_address_known(text: str, province_code: str, name: str, code: str) -> None:
    result = convert_address(text)
    assert isinstance(result, AddressConversion)
    assert result.province.code == province_code
    assert result.commune is not None
    assert (result.commune.name, result.commune.code) == (name, code)
    assert result.commune in communes()
    assert result.candidates[0] == result.commune


def test_convert_address_street_and_partial() -> None:
    result = convert_address("12 Lê Lợi, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh")
    assert result is not None and result.commune == commune("26740")
    assert result.street == "12 Lê Lợi"
    assert result.old_commune_code == "26740" and result.old_district_name == "Quận 1"

    only_province = convert_address("Tỉnh Bình Dương")
    assert only_province is not None and only_province.province.code == "79"
    assert only_province.commune is None and only_province.candidates == ()

    assert convert_address("") is None
    assert convert_address("not an address at all") is None


def test_convert_address_matches_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agrees with vietnamadminunits.convert_address on every legacy commune, no network."""
    import vietnamadminunits
    import vietnamadminunits.converter.converter_2025 as pkg

    def no_geocoding(address: str) -> None:
        raise AssertionError("geocoding attempted")

    monkeypatch.setattr(pkg, "get_geo_location", no_geocoding)
    rows = _legacy_rows()
    differences: list[tuple[str, str | None, str | None]] = []
    for row in rows:
        text = ", ".join(x for x in (row["ward"], row["district"], row["province"]) if x)
        ours = convert_address(text)
        theirs = vietnamadminunits.convert_address(text)
        assert ours is not None, text
        assert ours.province.code == theirs.province_code, text
        ours_name = units._search_key(ours.commune.name) if ours.commune else None
        theirs_name = units._search_key(theirs.ward) if theirs.ward else None
        if ours_name != theirs_name:
            differences.append((text, ours_name, theirs_name))
        if row["wardCode"]:
            legacy = convert_legacy_commune(row["wardCode"])
            assert legacy is not None and legacy.commune == ours.commune, text
    assert differences == []


def test_first_call_is_fast() -> None:
    for loader in (units._current, units._legacy, units._legacy_parser):
        loader.cache_clear()
    start = time.perf_counter()
    assert convert_legacy_commune("26740") is not None
    assert search("sai gon")
    elapsed = time.perf_counter() - start
    print(f"first legacy conversion + search: {elapsed:.3f}s")
    assert elapsed < 2.0


def test_no_console_noise(capsys: pytest.CaptureFixture[str]) -> None:
    units._legacy_parser.cache_clear()
    assert convert_address("Phường Bến Nghé, Quận 1, TP Hồ Chí Minh") is not None
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_every_commune_has_a_position_and_origin() -> None:
    missing = [c.code for c in units.communes() if units.commune_geo(c.code) is None]
    assert missing == []
    geo = units.commune_geo("26740")
    assert geo is not None and 10.7 < geo.latitude < 10.9 and 106.6 < geo.longitude < 106.8
    assert units.origin_province("26740") == "79"
    origins = {units.origin_province(c.code) for c in units.communes("79")}
    assert {"74", "77", "79"} <= origins, "HCMC's communes come from three old provinces"
