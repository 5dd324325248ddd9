"""A whole synthetic province end to end: layout, national-format files, ground truth, bytes."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from datetime import date
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ytehub.cli import app
from ytehub.core import units
from ytehub.formats import qd4750
from ytehub.synth.province import SynthConfig, generate_province

SMALL = SynthConfig(people=1500, province_code="79", seed=11, start=date(2025, 7, 1), days=90)


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("province") / "p"
    generate_province(SMALL, out)
    return out


def test_layout(province: Path) -> None:
    expected = [
        "manifest.json",
        "facilities.csv",
        "practitioners.csv",
        "immunization/vaccinations.csv",
        "immunization/bundles.ndjson",
        "emergency/calls-115.csv",
        "register/population-register.csv",
        "truth/persons.csv",
        "truth/source-records.csv",
        "truth/episodes.csv",
        "truth/outbreaks.csv",
    ]
    for name in expected:
        assert (province / name).is_file(), name
    manifest = orjson.loads((province / "manifest.json").read_bytes())
    counts = manifest["counts"]
    assert counts["people"] >= SMALL.people
    assert counts["episodes"] > SMALL.people * SMALL.days / 365 * 2, "about 3 visits a year"
    assert len(list((province / "qd4750").rglob("*.xml"))) == counts["facility_files"]
    assert len(_rows(province / "truth/persons.csv")) == counts["people"]
    assert len(_rows(province / "truth/episodes.csv")) == counts["episodes"]


def test_facility_files_follow_the_official_tables(province: Path) -> None:
    seen_tables: Counter[str] = Counter()
    episodes = 0
    for path in sorted((province / "qd4750").rglob("*.xml")):
        envelope = qd4750.read_envelope(path.read_bytes())
        assert envelope.facility_code == path.parent.name
        assert envelope.declared_count == len(envelope.episodes)
        assert path.name == f"{envelope.facility_code}_{envelope.created}.xml"
        for episode in envelope.episodes:
            episodes += 1
            for table, rows in episode.items():
                spec = qd4750.TABLES[table]
                seen_tables[table] += 1
                for row in rows:
                    assert list(row) == [n for n in spec.names if n in row], "official order"
                    for name, value in row.items():
                        element = spec.element(name)
                        if element.max_len is not None:
                            assert len(value) <= element.max_len, (table, name, value)
    assert episodes == orjson.loads((province / "manifest.json").read_bytes())["counts"]["episodes"]
    assert {"XML1", "XML2", "XML3", "XML4", "XML5", "XML7"} <= set(seen_tables)


def test_checkin_documents(province: Path) -> None:
    files = sorted((province / "qd4750-checkin").rglob("*.xml"))
    assert files
    rows = qd4750.read_checkin(files[0].read_bytes())
    assert rows and all(row["MA_LK"] and row["STT"] for row in rows)


def test_ground_truth_links_every_record(province: Path) -> None:
    sources = {
        (r["facility_code"], r["ma_bn"]): r["person_id"]
        for r in _rows(province / "truth/source-records.csv")
    }
    persons = {r["person_id"]: r for r in _rows(province / "truth/persons.csv")}
    for episode in _rows(province / "truth/episodes.csv"):
        assert sources[(episode["facility_code"], episode["ma_bn"])] == episode["person_id"]
        assert episode["person_id"] in persons
    outbreak_ids = {r["outbreak_id"] for r in _rows(province / "truth/outbreaks.csv")}
    tagged = {r["outbreak_id"] for r in _rows(province / "truth/episodes.csv") if r["outbreak_id"]}
    assert tagged <= outbreak_ids


def test_register_extract_is_the_truth(province: Path) -> None:
    register = _rows(province / "register/population-register.csv")
    persons = {r["cccd"]: r for r in _rows(province / "truth/persons.csv")}
    assert len(register) >= SMALL.people * 0.95
    for row in register[:200]:
        person = persons[row["so_dinh_danh"]]
        assert row["ngay_sinh"] == person["birth_date"]
        assert row["ho_ten"].startswith(person["family_name"])
        assert units.commune(row["ma_xa"]) is not None


def test_same_seed_same_bytes(province: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_province(SMALL, again)
    assert _digest(again) == _digest(province)
    other = tmp_path / "other"
    generate_province(SynthConfig(people=300, seed=12, days=30), other)
    assert _digest(other) != _digest(province)


def test_cli_synth(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        app, ["synth", "--out", str(out), "--people", "200", "--days", "20", "--province", "01"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").exists()
    assert orjson.loads((out / "manifest.json").read_bytes())["config"]["province_code"] == "01"
    refused = runner.invoke(app, ["synth", "--out", str(out), "--people", "10"])
    assert refused.exit_code == 1, "an existing province is never overwritten"
    unknown = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--province", "99"])
    assert unknown.exit_code == 1
