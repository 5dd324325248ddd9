"""Synthetic facilities: a station per commune, codes of the real form, positions in place."""

from __future__ import annotations

import re
from collections import Counter

from ytehub.core import units
from ytehub.core.ids import check_facility_code
from ytehub.synth.facilities import generate_facilities, issuer_code


def test_facilities_of_ho_chi_minh_city() -> None:
    workforce = generate_facilities("79", seed=3)
    levels = Counter(f.level for f in workforce.facilities)
    communes = units.communes("79")
    assert levels["commune_station"] == len(communes)
    assert levels["provincial_hospital"] >= 2 and levels["regional_hospital"] == 3
    assert levels["medical_centre"] >= len(communes) // 8
    codes = [f.code for f in workforce.facilities]
    assert len(set(codes)) == len(codes)
    assert all(check_facility_code(code).valid for code in codes)
    assert {code[:2] for code in codes} == {"74", "77", "79"}, "codes keep the old province"
    for facility in workforce.facilities:
        geo = units.commune_geo(facility.commune_code)
        assert geo is not None
        assert abs(facility.latitude - geo.latitude) < 0.2
        assert abs(facility.longitude - geo.longitude) < 0.2


def test_practitioners() -> None:
    workforce = generate_facilities("01", seed=3)
    staff = workforce.by_facility()
    assert all(staff[f.code] for f in workforce.facilities), "every facility has staff"
    pattern = re.compile(r"^\d{7}/HN-CCHN$")
    assert all(pattern.match(p.certificate_number) for p in workforce.practitioners)
    assert len({p.practitioner_id for p in workforce.practitioners}) == len(workforce.practitioners)


def test_deterministic() -> None:
    assert generate_facilities("92", 5) == generate_facilities("92", 5)
    assert generate_facilities("92", 5) != generate_facilities("92", 6)


def test_issuer_codes() -> None:
    assert issuer_code("Thành phố Hồ Chí Minh") == "HCM"
    assert issuer_code("Tuyên Quang") == "TQ"
