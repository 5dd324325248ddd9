"""The ingest validation report: a clean synthetic province, and one finding per planted defect."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import date

import orjson
import pytest

from ytehub.formats.qd4750 import Envelope, read_envelope, render_envelope, render_table
from ytehub.ingest.validation import (
    FILE_TABLE,
    FileReport,
    Finding,
    icd10_known,
    money_tolerance,
    validate_envelope,
    validate_episode,
)
from ytehub.synth.province import SynthConfig, generate_province

CONFIG = SynthConfig(people=300, province_code="79", seed=7, start=date(2025, 7, 1), days=120)

Tables = dict[str, list[dict[str, str]]]


@pytest.fixture(scope="module")
def envelopes(tmp_path_factory: pytest.TempPathFactory) -> list[Envelope]:
    out = tmp_path_factory.mktemp("province") / "p"
    generate_province(CONFIG, out)
    files = sorted((out / "qd4750").rglob("*.xml"))
    assert files
    return [read_envelope(path.read_bytes()) for path in files]


def _pick(envelopes: list[Envelope], want: Callable[[Tables], bool]) -> tuple[str, Tables]:
    for envelope in envelopes:
        for episode in envelope.episodes:
            if want(episode):
                return envelope.facility_code, copy.deepcopy(episode)
    raise AssertionError("no synthetic episode fits")


def _outpatient(episode: Tables) -> bool:
    """Insured, outpatient, at least two drug lines and two service lines."""
    xml1 = episode["XML1"][0]
    return (
        bool(xml1["MA_THE_BHYT"])
        and not xml1["NGAY_VAO_NOI_TRU"]
        and len(episode.get("XML2", ())) >= 2
        and len(episode.get("XML3", ())) >= 2
    )


@pytest.fixture
def base(envelopes: list[Envelope]) -> tuple[str, Tables]:
    return _pick(envelopes, _outpatient)


def _render(facility: str, episodes: list[Tables]) -> bytes:
    parts = [{table: render_table(table, rows) for table, rows in e.items()} for e in episodes]
    return render_envelope(facility, date(2025, 9, 1), parts)


def _report(facility: str, *episodes: Tables) -> FileReport:
    """Write the episodes as a facility file, read it back like ingest does, validate it."""
    return validate_envelope(read_envelope(_render(facility, list(episodes))))


def _findings(report: FileReport) -> list[Finding]:
    return [*report.findings, *(f for episode in report.episodes for f in episode.findings)]


def _only(report: FileReport) -> Finding:
    findings = _findings(report)
    assert len(findings) == 1, [f.as_dict("en") for f in findings]
    finding = findings[0]
    assert finding.message.vi and finding.message.en and finding.message.vi != finding.message.en
    return finding


def _where(finding: Finding) -> tuple[str, str, str, int | None, str | None, str | None]:
    return (
        finding.severity,
        finding.code,
        finding.table,
        finding.row,
        finding.element,
        finding.value,
    )


# --------------------------------------------------------------------------- the clean province


def test_synthetic_province_validates_without_errors(envelopes: list[Envelope]) -> None:
    episodes = 0
    for envelope in envelopes:
        report = validate_envelope(envelope)
        errors = [f.as_dict("en") for f in _findings(report) if f.severity == "error"]
        assert not errors, errors[:5]
        assert report.ok and report.errors == 0
        assert len(report.episodes) == len(envelope.episodes)
        assert all(
            e.ok and e.ma_lk == ep["XML1"][0]["MA_LK"]
            for e, ep in zip(report.episodes, envelope.episodes, strict=True)
        )
        episodes += len(envelope.episodes)
    assert episodes > 100


def test_base_episode_round_trips_clean(base: tuple[str, Tables]) -> None:
    facility, episode = base
    report = _report(facility, episode)
    assert _findings(report) == []
    assert report.ok and report.file_ok


def test_validation_is_fast(envelopes: list[Envelope]) -> None:
    """Budget 0.3 ms of CPU per episode; this guards against a tenfold regression only."""
    episodes = sum(len(envelope.episodes) for envelope in envelopes)
    start = time.process_time()
    for envelope in envelopes:
        validate_envelope(envelope)
    per_episode = (time.process_time() - start) / episodes
    assert per_episode < 0.003, f"{per_episode * 1e6:.0f} µs per episode"


# --------------------------------------------------------------------------- planted defects


def test_required_element_empty(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML1"][0]["HO_TEN"] = ""
    finding = _only(_report(facility, episode))
    assert _where(finding) == ("error", "ingest.required_empty", "XML1", 1, "HO_TEN", "")
    assert finding.hoso == 1 and finding.ma_lk == episode["XML1"][0]["MA_LK"]


def test_required_element_absent(base: tuple[str, Tables]) -> None:
    facility, episode = base
    del episode["XML2"][1]["DON_VI_TINH"]  # the writer writes every element: edit the parse
    report = validate_episode(episode, hoso=3, facility_code=facility)
    [finding] = report.findings
    assert _where(finding) == ("error", "ingest.required_missing", "XML2", 2, "DON_VI_TINH", None)
    assert finding.hoso == 3 and not report.ok
    assert "absent" in finding.message.en and "không có" in finding.message.vi


def test_too_long_value_is_truncated_in_the_report(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML1"][0]["HO_TEN"] = "Nguyễn " * 40  # 280 characters, at most 255
    finding = _only(_report(facility, episode))
    assert _where(finding) == (
        "error",
        "ingest.too_long",
        "XML1",
        1,
        "HO_TEN",
        ("Nguyễn " * 40)[:100],
    )
    assert "280" in finding.message.en and "255" in finding.message.vi


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("202502311200", "day 31 does not exist in 2025-02"),
        ("202513011200", "month 13 is invalid"),
        ("202503012460", "time 24:60 is invalid"),
        ("2025-03-01", "exactly 12 digits"),
    ],
)
def test_bad_date(base: tuple[str, Tables], value: str, reason: str) -> None:
    facility, episode = base
    episode["XML3"][1]["NGAY_YL"] = value
    finding = _only(_report(facility, episode))
    assert _where(finding) == ("error", "ingest.bad_date", "XML3", 2, "NGAY_YL", value)
    assert reason in finding.message.en


def test_birth_date_may_give_the_year_only(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML1"][0]["NGAY_SINH"] = episode["XML1"][0]["NGAY_SINH"][:4] + "00000000"
    assert _findings(_report(facility, episode)) == []
    episode["XML1"][0]["NGAY_SINH"] = episode["XML1"][0]["NGAY_SINH"][:4] + "00150000"
    assert _where(_only(_report(facility, episode)))[:2] == ("error", "ingest.bad_date")


def test_admission_after_discharge(base: tuple[str, Tables]) -> None:
    facility, episode = base
    xml1 = episode["XML1"][0]
    xml1["NGAY_RA"] = f"{int(xml1['NGAY_VAO'][:4]) - 1}{xml1['NGAY_VAO'][4:]}"
    finding = _only(_report(facility, episode))
    assert _where(finding) == ("error", "ingest.date_order", "XML1", 1, "NGAY_RA", xml1["NGAY_RA"])
    assert "NGAY_VAO" in finding.message.en


def test_unknown_icd10_code(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML1"][0]["MA_BENH_CHINH"] = "A00.7"  # A00 has .0, .1 and .9 only
    finding = _only(_report(facility, episode))
    assert _where(finding) == (
        "error",
        "ingest.icd10_unknown",
        "XML1",
        1,
        "MA_BENH_CHINH",
        "A00.7",
    )


def test_unknown_secondary_icd10_code_is_named_by_position(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML1"][0]["MA_BENH_KT"] = "I10;E119;Z99.99"
    finding = _only(_report(facility, episode))
    assert _where(finding) == (
        "error",
        "ingest.icd10_unknown",
        "XML1",
        1,
        "MA_BENH_KT",
        "I10;E119;Z99.99",
    )
    assert "(value 3)" in finding.message.en and "Z99.99" in finding.message.en


@pytest.mark.parametrize(
    "code", ["J06.9", "J069", "j06.9", "A09", "A90", "A91", "A97.0", "U07.1", "S52.50", " I10 "]
)
def test_icd10_forms_used_in_vietnam_are_accepted(code: str) -> None:
    assert icd10_known(code)


@pytest.mark.parametrize("code", ["A00.7", "J06.99", "XYZ", "J0", "", "A09.9.1"])
def test_icd10_unknown_codes(code: str) -> None:
    assert not icd10_known(code)


def test_bad_bhyt_card(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML1"][0]["MA_THE_BHYT"] = "XX4790123456789"
    finding = _only(_report(facility, episode))
    assert _where(finding) == (
        "error",
        "ingest.bhyt_card",
        "XML1",
        1,
        "MA_THE_BHYT",
        "XX4790123456789",
    )
    assert "Object code XX" in finding.message.en


def test_bad_facility_code_in_an_episode(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML1"][0]["MA_CSKCB"] = "7400A"
    finding = _only(_report(facility, episode))
    assert _where(finding) == ("error", "ingest.facility_code", "XML1", 1, "MA_CSKCB", "7400A")
    assert "Character 5" in finding.message.en


def test_bad_facility_code_of_the_file(base: tuple[str, Tables]) -> None:
    _, episode = base
    report = _report("7400", episode)
    finding = _only(report)
    assert _where(finding) == ("error", "ingest.facility_code", FILE_TABLE, None, "MACSKCB", "7400")
    assert finding.hoso is None and finding.ma_lk is None
    assert not report.ok and not report.file_ok and report.episodes[0].ok


def test_episode_of_another_facility_is_a_warning(base: tuple[str, Tables]) -> None:
    facility, episode = base
    other = "01001" if facility != "01001" else "01002"
    finding = _only(_report(other, episode))
    assert _where(finding)[:5] == ("warning", "ingest.facility_mismatch", "XML1", 1, "MA_CSKCB")


def test_declared_count_mismatch(base: tuple[str, Tables]) -> None:
    facility, episode = base
    data = _render(facility, [episode])
    assert b"<SOLUONGHOSO>1</SOLUONGHOSO>" in data
    report = validate_envelope(read_envelope(data.replace(b"<SOLUONGHOSO>1<", b"<SOLUONGHOSO>2<")))
    finding = _only(report)
    assert _where(finding) == (
        "error",
        "ingest.count_mismatch",
        FILE_TABLE,
        None,
        "SOLUONGHOSO",
        "2",
    )
    assert not report.ok and report.errors == 1 and report.episodes[0].ok


def test_foreign_ma_lk_in_xml2(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML2"][1]["MA_LK"] = "99999202501010001"
    finding = _only(_report(facility, episode))
    assert _where(finding) == (
        "error",
        "ingest.ma_lk_mismatch",
        "XML2",
        2,
        "MA_LK",
        "99999202501010001",
    )


def test_total_off_by_1000_vnd(base: tuple[str, Tables]) -> None:
    facility, episode = base
    xml1 = episode["XML1"][0]
    xml1["T_TONGCHI_BV"] = f"{float(xml1['T_TONGCHI_BV']) + 1000:.2f}"
    finding = _only(_report(facility, episode))
    assert _where(finding) == (
        "error",
        "ingest.total_mismatch",
        "XML1",
        1,
        "T_TONGCHI_BV",
        xml1["T_TONGCHI_BV"],
    )
    assert "1,000.00" in finding.message.en and "THANH_TIEN_BV" in finding.message.vi


def test_totals_tolerate_rounding(base: tuple[str, Tables]) -> None:
    facility, episode = base
    lines = len(episode["XML2"]) + len(episode["XML3"])
    xml1 = episode["XML1"][0]
    allowed = money_tolerance(lines)
    assert allowed == max(1.0, 0.5 * lines)
    xml1["T_BHTT"] = f"{float(xml1['T_BHTT']) + allowed:.2f}"
    assert _findings(_report(facility, episode)) == []
    xml1["T_BHTT"] = f"{float(xml1['T_BHTT']) + 0.01:.2f}"
    assert _where(_only(_report(facility, episode)))[1:5] == (
        "ingest.total_mismatch",
        "XML1",
        1,
        "T_BHTT",
    )


def test_not_a_number(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML2"][0]["SO_LUONG"] = "1,5"
    finding = _only(_report(facility, episode))
    assert _where(finding) == ("error", "ingest.not_number", "XML2", 1, "SO_LUONG", "1,5")


def test_sex_code(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML1"][0]["GIOI_TINH"] = "0"
    finding = _only(_report(facility, episode))
    assert _where(finding) == ("error", "ingest.bad_code", "XML1", 1, "GIOI_TINH", "0")


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("012345678", None),  # CMND
        ("B1234567", None),  # passport
        ("", None),  # not required
        ("0791234", "12 digits"),
        ("079 123 456 789", "Character 4"),
    ],
)
def test_identity_numbers(base: tuple[str, Tables], number: str, problem: str | None) -> None:
    facility, episode = base
    episode["XML1"][0]["SO_CCCD"] = number
    findings = _findings(_report(facility, episode))
    if problem is None:
        assert findings == []
    else:
        [finding] = findings
        assert _where(finding) == (
            "warning",
            "ingest.identity_number",
            "XML1",
            1,
            "SO_CCCD",
            number,
        )
        assert problem in finding.message.en


def test_cccd_disagreeing_with_the_record_is_a_warning(base: tuple[str, Tables]) -> None:
    facility, episode = base
    xml1 = episode["XML1"][0]
    year = int(xml1["NGAY_SINH"][:4])
    other_sex = "female" if xml1["GIOI_TINH"] == "1" else "male"
    century = (year // 100 - 19) * 2 + (1 if other_sex == "female" else 0)
    xml1["SO_CCCD"] = f"079{century}{year % 100:02d}123456"
    finding = _only(_report(facility, episode))
    assert finding.code == "ingest.identity_number" and finding.severity == "warning"
    assert "record says" in finding.message.en


def test_unknown_element_is_a_warning(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML3"][0]["MA_CSKCB_DI"] = "79001"
    report = validate_episode(episode, hoso=1, facility_code=facility)
    [finding] = report.findings
    assert _where(finding) == (
        "warning",
        "ingest.unknown_element",
        "XML3",
        1,
        "MA_CSKCB_DI",
        "79001",
    )
    assert report.ok


def test_conditional_requirement_is_a_warning(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML3"][0]["MA_NHOM"] = "12"  # transport: needs the fuel code MA_XANG_DAU
    finding = _only(_report(facility, episode))
    assert _where(finding) == (
        "warning",
        "ingest.conditional_missing",
        "XML3",
        1,
        "MA_XANG_DAU",
        "",
    )
    assert "MA_NHOM is 12" in finding.message.en


def test_xml1_missing_and_duplicate_episode(base: tuple[str, Tables]) -> None:
    facility, episode = base
    report = _report(facility, episode, episode)
    finding = _only(report)
    assert _where(finding) == (
        "error",
        "ingest.duplicate_ma_lk",
        "XML1",
        1,
        "MA_LK",
        episode["XML1"][0]["MA_LK"],
    )
    assert finding.hoso == 2 and report.episodes[0].ok and not report.episodes[1].ok
    without = {table: rows for table, rows in episode.items() if table != "XML1"}
    [missing] = validate_episode(without, hoso=1).findings
    assert _where(missing)[:3] == ("error", "ingest.xml1_missing", "XML1")


def test_whitespace_only_required_value_is_empty(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML2"][0]["DON_GIA"] = "  "
    finding = _only(_report(facility, episode))
    assert _where(finding) == ("error", "ingest.required_empty", "XML2", 1, "DON_GIA", "  ")


def _defective(episode: Tables) -> Tables:
    """Many defects at once, in elements the fast path checks in bulk and one by one."""
    episode = copy.deepcopy(episode)
    xml1, drug, service = episode["XML1"][0], episode["XML2"][0], episode["XML3"][1]
    xml1.update(HO_TEN="", MA_BENH_CHINH="A00.7", GIOI_TINH="9", DIA_CHI="x" * 1100)
    xml1["T_TONGCHI_BH"] = "12.3.4"
    del xml1["MA_HSBA"]
    drug.update(SO_LUONG=" ", DON_GIA="1e5", MA_LK="other", NGAY_YL="202502300800")
    service.update(MA_NHOM="12", THANH_TIEN_BV="-", NGAY_KQ="2025")
    service["EXTRA"] = "?"
    return episode


def test_both_row_paths_report_the_same(base: tuple[str, Tables]) -> None:
    """Rows in official order take the bulk path, others the per-element path: same findings."""
    facility, episode = base
    broken = _defective(episode)
    shuffled = {
        table: [dict(reversed(list(row.items()))) for row in rows] for table, rows in broken.items()
    }
    fast = validate_episode(broken, hoso=1, facility_code=facility).findings
    slow = validate_episode(shuffled, hoso=1, facility_code=facility).findings
    assert len(fast) >= 12
    assert sorted(map(_where, fast), key=repr) == sorted(map(_where, slow), key=repr)
    assert {f.code for f in fast} >= {
        "ingest.required_empty",
        "ingest.required_missing",
        "ingest.too_long",
        "ingest.not_number",
        "ingest.bad_date",
        "ingest.icd10_unknown",
        "ingest.bad_code",
        "ingest.ma_lk_mismatch",
        "ingest.unknown_element",
        "ingest.conditional_missing",
    }


# --------------------------------------------------------------------------- the JSON shape


def test_report_json_shape(base: tuple[str, Tables]) -> None:
    facility, episode = base
    episode["XML1"][0]["MA_BENH_CHINH"] = "A00.7"
    report = _report(facility, episode)
    both = orjson.loads(orjson.dumps(report.as_dict()))
    assert set(both) == {
        "ok",
        "file_ok",
        "facility_code",
        "created",
        "declared_count",
        "episode_count",
        "episodes_with_errors",
        "errors",
        "warnings",
        "findings",
        "episodes",
    }
    assert (both["ok"], both["errors"], both["episode_count"], both["episodes_with_errors"]) == (
        False,
        1,
        1,
        1,
    )
    [first] = both["episodes"]
    assert set(first) == {"hoso", "ma_lk", "ok", "errors", "warnings", "findings"}
    [finding] = first["findings"]
    assert set(finding) == {
        "severity",
        "code",
        "table",
        "row",
        "element",
        "value",
        "message",
        "ma_lk",
        "hoso",
    }
    assert set(finding["message"]) == {"vi", "en"}
    english = report.as_dict("en")["episodes"][0]["findings"][0]["message"]
    vietnamese = report.as_dict("vi")["episodes"][0]["findings"][0]["message"]
    assert english.startswith("MA_BENH_CHINH: code A00.7 is not in ICD-10")
    assert vietnamese.startswith("MA_BENH_CHINH: mã A00.7 không có")


def test_report_of_an_empty_file() -> None:
    report = validate_envelope(Envelope("79001", "20250901", 0, []))
    finding = _only(report)
    assert _where(finding)[:5] == (
        "warning",
        "ingest.no_episodes",
        FILE_TABLE,
        None,
        "DANHSACHHOSO",
    )
    assert report.ok
