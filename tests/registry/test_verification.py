"""Verification against the population register: loading extracts (CSV, Parquet), the
comparison rules, verifying stored persons, and coverage by commune, on real databases."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import func, select

from ytehub.core.db import Database
from ytehub.registry.models import PopulationEntry, RegistryPerson
from ytehub.registry.normalize import fold_name, record
from ytehub.registry.verification import (
    EXTRACT_SOURCE,
    MISMATCH,
    NOT_FOUND,
    VERIFIED,
    CommuneShare,
    RegisterEntry,
    compare_with_register,
    load_extract,
    verified_share_by_commune,
    verify_persons,
)
from ytehub.synth.province import REGISTER_FIELDS, SynthConfig, generate_province

TINY = SynthConfig(people=150, province_code="79", seed=21, days=3, outbreaks=False)

PHU_THO = "27226"  # Phường Phú Thọ, Thành phố Hồ Chí Minh
THU_DAU_MOT = "25747"  # Phường Thủ Dầu Một, Thành phố Hồ Chí Minh
BA_DINH = "00004"  # Phường Ba Đình, Hà Nội

# Synthetic people, as the register writes them.
NGOC = ["079190000001", "Trần Thị Bích Ngọc", "1990-04-12", "2", "12 Lê Lợi", PHU_THO, "79"]
HUNG = ["079075000002", "Lê Văn Hùng", "1975-11-03", "1", "5 Hai Bà Trưng", PHU_THO, "79"]
CHAU = ["001203000003", "Phạm Minh Châu", "2003-01-30", "1", "8 Kim Mã", BA_DINH, "01"]


def _write_csv(path: Path, rows: Iterable[list[str]], header: list[str] = REGISTER_FIELDS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _population(db: Database) -> dict[str, PopulationEntry]:
    with db.session() as session:
        return {row.so_dinh_danh: row for row in session.scalars(select(PopulationEntry))}


def _person(
    person_id: str,
    *,
    status: str = "active",
    verification: str | None = None,
    **fields: str | None,
) -> RegistryPerson:
    golden = record("79001", person_id, **fields).plain()
    now = datetime.now(UTC)
    return RegistryPerson(
        id=person_id,
        created_at=now,
        updated_at=now,
        status=status,
        golden=golden,
        commune_code=golden["commune"],
        cccd=golden["cccd"],
        verification=verification,
    )


def _register_entry(row: list[str]) -> RegisterEntry:
    sex = {"1": "male", "2": "female"}[row[3]]
    return RegisterEntry(row[0], row[1], row[2], sex, row[5], row[6], row[4], "test")


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("province") / "p"
    generate_province(TINY, out)
    return out / "register" / "population-register.csv"


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_loads_the_synthetic_province_extract(db: Database, synthetic_extract: Path) -> None:
    rows = _csv_rows(synthetic_extract)
    with_id = [row for row in rows if len(row["so_dinh_danh"]) == 12]
    assert len(with_id) > 100
    progress: list[int] = []

    result = load_extract(db, synthetic_extract, on_progress=progress.append, batch=40)

    assert result.source == "population-register.csv"
    assert result.loaded == len(with_id)
    assert result.skipped == len(rows) - len(with_id)
    assert progress == sorted(progress) and progress[-1] == len(rows) and len(progress) > 2
    stored = _population(db)
    assert len(stored) == len({row["so_dinh_danh"] for row in with_id})
    for row in with_id[::17]:
        entry = stored[row["so_dinh_danh"]]
        assert entry.ho_ten == row["ho_ten"]
        assert entry.name_folded == fold_name(row["ho_ten"])
        assert entry.ngay_sinh == row["ngay_sinh"]
        assert entry.gioi_tinh == row["gioi_tinh"]
        assert entry.dia_chi == row["dia_chi_thuong_tru"]
        assert (entry.ma_xa, entry.ma_tinh) == (row["ma_xa"], row["ma_tinh"])
        assert entry.source == "population-register.csv"


def test_synthetic_persons_are_verified_against_their_extract(
    db: Database, synthetic_extract: Path
) -> None:
    rows = [row for row in _csv_rows(synthetic_extract) if row["so_dinh_danh"]][:30]
    load_extract(db, synthetic_extract)
    with db.session() as session:
        for n, row in enumerate(rows):
            year = int(row["ngay_sinh"][:4]) - (n == 7)  # one facility has the year wrong
            # As a facility writes them: upper case without diacritics, XML1 birth format.
            session.add(
                _person(
                    f"p{n:03d}",
                    name=str(fold_name(row["ho_ten"])).upper(),
                    birth=f"{year}{row['ngay_sinh'][5:7]}{row['ngay_sinh'][8:]}0000",
                    sex=row["gioi_tinh"],
                    document=row["so_dinh_danh"],
                    commune=row["ma_xa"],
                )
            )

    summary = verify_persons(db, batch=8)

    assert (summary.checked, summary.verified, summary.mismatch) == (30, 29, 1)
    assert summary.mismatched_fields == {"birth_date": 1}
    with db.session() as session:
        person = session.get(RegistryPerson, "p007")
        assert person is not None and person.verification == MISMATCH
        assert person.verification_detail is not None
        assert person.verification_detail["mismatched"] == ["birth_date"]


def test_loads_parquet_with_typed_columns(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "extract.parquet"
    # Identity numbers as integers (leading zero lost), a DATE column, integer codes.
    duckdb.execute(
        f"""
        COPY (
            SELECT * FROM (VALUES
                (79190000001, 'Trần Thị Bích Ngọc', DATE '1990-04-12', '2', '12 Lê Lợi', 27226, 79),
                (1203000003, 'Phạm Minh Châu', DATE '2003-01-30', '1', '8 Kim Mã', 4, 1),
                (123, 'Số sai', DATE '2000-01-01', '1', NULL, NULL, NULL)
            ) AS t(so_dinh_danh, ho_ten, ngay_sinh, gioi_tinh, dia_chi_thuong_tru, ma_xa, ma_tinh)
        ) TO '{path}' (FORMAT parquet)
        """
    )

    result = load_extract(db, path, source="bo-cong-an-2025-06")

    assert (result.loaded, result.skipped, result.skipped_rows) == (2, 1, (3,))
    stored = _population(db)
    assert set(stored) == {NGOC[0], CHAU[0]}
    chau = stored[CHAU[0]]
    assert (chau.ho_ten, chau.ngay_sinh, chau.gioi_tinh) == ("Phạm Minh Châu", "2003-01-30", "1")
    assert (chau.ma_xa, chau.ma_tinh, chau.source) == (BA_DINH, "01", "bo-cong-an-2025-06")


def test_a_header_without_the_needed_columns_is_refused(db: Database, tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "foreign.csv", [NGOC[:3]], ["so_dinh_danh", "ho_ten", "dob"])

    with pytest.raises(ValueError, match="lacks column\\(s\\) ngay_sinh, gioi_tinh"):
        load_extract(db, path)

    assert _population(db) == {}


def test_rows_with_a_malformed_identity_number_are_skipped_and_counted(
    db: Database, tmp_path: Path
) -> None:
    bad = ["12345", "", "07919000000X", "0791900000011", "０７９１９００００００１"]
    rows = [NGOC, *([cccd, *NGOC[1:]] for cccd in bad), HUNG]
    path = _write_csv(tmp_path / "extract.csv", rows)

    result = load_extract(db, path)

    assert (result.loaded, result.skipped, result.skipped_rows) == (2, 5, (2, 3, 4, 5, 6))
    assert set(_population(db)) == {NGOC[0], HUNG[0]}


def test_a_newer_extract_replaces_rows(db: Database, tmp_path: Path) -> None:
    # A repeat within one file: the last row wins.
    first = _write_csv(tmp_path / "2024.csv", [NGOC, HUNG, [*HUNG[:4], "1 Cũ", *HUNG[5:]]])
    assert load_extract(db, first, batch=2).loaded == 3
    married = [NGOC[0], "Trần Thị Bích Ngọc Anh", *NGOC[2:]]
    second = _write_csv(tmp_path / "2025.csv", [married, CHAU])

    load_extract(db, second)

    stored = _population(db)
    assert set(stored) == {NGOC[0], HUNG[0], CHAU[0]}
    assert (stored[NGOC[0]].ho_ten, stored[NGOC[0]].source) == (married[1], "2025.csv")
    assert (stored[HUNG[0]].dia_chi, stored[HUNG[0]].source) == ("1 Cũ", "2024.csv")


# --------------------------------------------------------------------------------------
# Comparison rules
# --------------------------------------------------------------------------------------


def _golden(**fields: str | None) -> dict[str, object]:
    written = {"name": NGOC[1], "birth": "19900412", "sex": "2", "document": NGOC[0]}
    return record("79001", "BN1", **{**written, **fields}).plain()


def test_agreeing_fields_verify() -> None:
    entry = _register_entry(NGOC)

    outcome = compare_with_register(_golden(name="TRAN THI  BICH NGOC"), entry)

    assert (outcome.status, outcome.mismatched) == (VERIFIED, ())
    assert outcome.detail["checked"] == ["name", "birth_date", "sex"]
    assert "differences" not in outcome.detail and "commune" not in outcome.detail


def test_unknown_parts_are_no_disagreement() -> None:
    entry = _register_entry(NGOC)

    year_only = compare_with_register(_golden(birth="199000000000", sex=None), entry)
    no_name = compare_with_register(_golden(name=None), entry)

    assert (year_only.status, year_only.detail["checked"]) == (VERIFIED, ["name", "birth_date"])
    assert (no_name.status, no_name.detail["checked"]) == (VERIFIED, ["birth_date", "sex"])


def test_disagreeing_fields_are_listed() -> None:
    entry = _register_entry(NGOC)

    outcome = compare_with_register(_golden(name="Trần Thị Bích Ngân", sex="1"), entry)
    month = compare_with_register(_golden(birth="19901204"), entry)
    year = compare_with_register(_golden(birth="1991"), entry)

    assert (outcome.status, outcome.mismatched) == (MISMATCH, ("name", "sex"))
    assert outcome.detail["differences"] == {
        "name": {"registry": "Trần Thị Bích Ngân", "register": "Trần Thị Bích Ngọc"},
        "sex": {"registry": "male", "register": "female"},
    }
    assert (month.status, month.mismatched) == (MISMATCH, ("birth_date",))
    assert month.detail["differences"]["birth_date"] == {
        "registry": "1990-12-04",
        "register": "1990-04-12",
    }
    assert year.mismatched == ("birth_date",)


def test_a_moved_person_is_verified_with_the_commune_reported() -> None:
    outcome = compare_with_register(_golden(commune=THU_DAU_MOT), _register_entry(NGOC))

    assert outcome.status == VERIFIED
    assert outcome.detail["commune"] == {"registry": THU_DAU_MOT, "register": PHU_THO}


def test_no_cccd_or_no_entry_is_not_found() -> None:
    no_cccd = compare_with_register(_golden(document="B1234567"), _register_entry(NGOC))
    absent = compare_with_register(_golden(), None)

    assert (no_cccd.status, no_cccd.detail["reason"]) == (NOT_FOUND, "no_cccd")
    assert (absent.status, absent.detail["reason"]) == (NOT_FOUND, "not_in_register")


# --------------------------------------------------------------------------------------
# Verifying stored persons
# --------------------------------------------------------------------------------------


def _load(db: Database, tmp_path: Path, rows: list[list[str]]) -> None:
    load_extract(db, _write_csv(tmp_path / "extract.csv", rows))


def test_verify_persons_stores_each_outcome(db: Database, tmp_path: Path) -> None:
    _load(db, tmp_path, [NGOC, HUNG, CHAU])
    with db.session() as session:
        session.add_all(
            [
                _person("a", name="Tran Thi Bich Ngoc", birth="19900412", sex="2", cccd=NGOC[0]),
                _person("b", name="Lê Văn Hùng", birth="19750311", sex="2", cccd=HUNG[0]),
                _person("c", name="Vũ Thị Lan", birth="1988", sex="2", cccd="079188000099"),
                _person("d", name="Đỗ Văn Tâm", birth="1960", sex="1", cmnd="025123456"),
                _person("e", name="Phạm Minh Châu", birth="2003", cccd=CHAU[0], status="merged"),
            ]
        )
    progress: list[int] = []

    summary = verify_persons(db, on_progress=progress.append, batch=3)

    assert summary.counts == {VERIFIED: 1, MISMATCH: 1, NOT_FOUND: 2}
    assert (summary.checked, summary.source) == (4, EXTRACT_SOURCE)
    assert summary.mismatched_fields == {"birth_date": 1, "sex": 1}
    assert progress == [3, 4]
    with db.session() as session:
        people = {p.id: p for p in session.scalars(select(RegistryPerson))}
    assert {k: p.verification for k, p in people.items()} == {
        "a": VERIFIED,
        "b": MISMATCH,
        "c": NOT_FOUND,
        "d": NOT_FOUND,
        "e": None,  # merged persons are left alone
    }
    assert people["b"].verification_detail is not None
    assert people["b"].verification_detail["mismatched"] == ["birth_date", "sex"]
    assert people["c"].verification_detail == {"mismatched": [], "reason": "not_in_register"}
    assert people["d"].verification_detail == {"mismatched": [], "reason": "no_cccd"}
    assert all(people[k].verified_at is not None for k in "abcd")
    assert all(people[k].verification_source == EXTRACT_SOURCE for k in "abcd")


class _NationalApi:
    """A register answering one CCCD at a time, as a province's API adapter would."""

    name = "csdlqg-dan-cu"

    def __init__(self, entries: Iterable[RegisterEntry]) -> None:
        self.entries = {entry.cccd: entry for entry in entries}
        self.asked: list[str] = []

    def lookup(self, cccd: str) -> RegisterEntry | None:
        self.asked.append(cccd)
        return self.entries.get(cccd)


def test_only_unchecked_persons_through_another_adapter(db: Database) -> None:
    api = _NationalApi([_register_entry(NGOC), _register_entry(HUNG)])
    with db.session() as session:
        session.add(_person("a", name=NGOC[1], birth="1990", sex="2", cccd=NGOC[0]))
    assert verify_persons(db, register_factory=lambda _session: api).verified == 1
    with db.session() as session:
        session.add(_person("b", name=HUNG[1], birth="1975", sex="1", cccd=HUNG[0]))

    summary = verify_persons(db, register_factory=lambda _session: api, only_unchecked=True)

    assert (summary.checked, summary.verified, summary.source) == (1, 1, "csdlqg-dan-cu")
    assert api.asked == [NGOC[0], HUNG[0]]
    with db.session() as session:
        person = session.get(RegistryPerson, "b")
        assert person is not None
        assert (person.verification, person.verification_source) == (VERIFIED, "csdlqg-dan-cu")


# --------------------------------------------------------------------------------------
# Coverage by commune
# --------------------------------------------------------------------------------------


def test_verified_share_by_commune(db: Database) -> None:
    people = [
        ("p1", PHU_THO, VERIFIED),
        ("p2", PHU_THO, VERIFIED),
        ("p3", PHU_THO, MISMATCH),
        ("p4", PHU_THO, None),
        ("p5", THU_DAU_MOT, NOT_FOUND),
        ("p6", BA_DINH, VERIFIED),
        ("p7", None, None),
    ]
    with db.session() as session:
        for person_id, commune, status in people:
            session.add(
                _person(person_id, name="Ngô Văn Bình", commune=commune, verification=status)
            )
        session.add(_person("p8", commune=PHU_THO, verification=VERIFIED, status="merged"))

    with db.session() as session:
        everywhere = verified_share_by_commune(session)
        hcm = verified_share_by_commune(session, province_code="79")
        assert session.scalar(select(func.count()).select_from(RegistryPerson)) == 8

    assert [share.commune_code for share in everywhere] == [BA_DINH, THU_DAU_MOT, PHU_THO, None]
    assert hcm == everywhere[1:3]
    assert hcm[1] == CommuneShare(
        commune_code=PHU_THO,
        commune_name="Phường Phú Thọ",
        total=4,
        verified=2,
        mismatch=1,
        not_found=0,
        unchecked=1,
        share_verified=0.5,
    )
    assert (hcm[0].commune_name, hcm[0].not_found, hcm[0].share_verified) == (
        "Phường Thủ Dầu Một",
        1,
        0.0,
    )
    assert (everywhere[3].commune_name, everywhere[3].unchecked) == (None, 1)
    assert everywhere[0].share_verified == 1.0


def test_no_persons_no_communes(db: Database) -> None:
    with db.session() as session:
        assert verified_share_by_commune(session) == []
        assert verified_share_by_commune(session, province_code="99") == []
    assert verify_persons(db).checked == 0
