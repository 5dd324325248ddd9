"""QĐ 4750 episode → FHIR R4 mapping, over a small synthetic province: every resource valid,
ids stable across resubmissions, references closed within the episode, element checks."""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ytehub.formats.qd4750.reader import read_envelope
from ytehub.ingest.mapping import (
    NAMESPACE,
    MappedEpisode,
    SourceFile,
    content_hash,
    id_prefix,
    map_episode,
    prefix_of,
    resource_id,
)
from ytehub.records.validation import validate
from ytehub.synth.province import SynthConfig, generate_province

Episode = dict[str, list[dict[str, str]]]
CONFIG = SynthConfig(people=300, province_code="79", seed=3, start=date(2025, 7, 1), days=365)
SOURCE = SourceFile("74001_20250818.xml", "ab" * 32, datetime(2025, 8, 19, 1, 0, tzinfo=UTC))
RECORDED = datetime(2025, 8, 19, 1, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Episode]]:
    out = tmp_path_factory.mktemp("province") / "p"
    generate_province(CONFIG, out)
    found = []
    for path in sorted((out / "qd4750").rglob("*.xml")):
        envelope = read_envelope(path.read_bytes())
        found.extend((envelope.facility_code, episode) for episode in envelope.episodes)
    assert len(found) > 300
    return found


def _map(facility: str, episode: Episode, source: SourceFile = SOURCE) -> MappedEpisode:
    return map_episode(facility, episode, "person-1", source, RECORDED)


def _first(
    episodes: list[tuple[str, Episode]], test: Callable[[Episode], Any]
) -> tuple[str, Episode]:
    return next((f, e) for f, e in episodes if test(e))


def _of(mapped: MappedEpisode, resource_type: str) -> list[dict[str, Any]]:
    return [r for r in mapped.resources if r["resourceType"] == resource_type]


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _vn(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}T{text[8:10]}:{text[10:12]}:00+07:00"


def test_every_resource_validates(episodes: list[tuple[str, Episode]]) -> None:
    kinds: Counter[str] = Counter()
    ids: set[str] = set()
    for facility, episode in episodes:
        mapped = _map(facility, episode)
        assert mapped.ma_lk == episode["XML1"][0]["MA_LK"]
        for resource in mapped.resources:
            validate(resource)
            key = f"{resource['resourceType']}/{resource['id']}"
            assert key not in ids, key
            ids.add(key)
            kinds[resource["resourceType"]] += 1
    assert kinds["Encounter"] == kinds["Provenance"] == len(episodes)
    for kind in (
        "Condition",
        "MedicationRequest",
        "Observation",
        "DiagnosticReport",
        "Procedure",
        "Composition",
        "Appointment",
        "ServiceRequest",
    ):
        assert kinds[kind] > 0, kind
    assert 8 < sum(kinds.values()) / len(episodes) < 25


def test_ids_are_deterministic(episodes: list[tuple[str, Episode]]) -> None:
    for facility, episode in episodes[:50]:
        assert _map(facility, episode) == _map(facility, copy.deepcopy(episode))
    facility, episode = episodes[0]
    ma_lk = episode["XML1"][0]["MA_LK"]
    encounter = _of(_map(facility, episode), "Encounter")[0]
    prefix = id_prefix(RECORDED)
    expected = resource_id(facility, ma_lk, "XML1", "1", "encounter", prefix)
    assert encounter["id"] == expected and prefix_of(expected) == prefix
    # UUIDv7: the time the episode was recorded in the first 48 bits, then uuid5's hash bits.
    made = uuid.UUID(expected)
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert made.int >> 80 == int(RECORDED.timestamp() * 1000)
    hashed = uuid.uuid5(NAMESPACE, f"{facility}\x1f{ma_lk}\x1fXML1\x1f1\x1fencounter")
    assert expected[15:] == str(hashed)[15:]


def test_ids_follow_the_recording_time(episodes: list[tuple[str, Episode]]) -> None:
    """Episodes recorded later get ids that sort later, whatever their admission time: new
    rows append to the indexes. A given prefix (a resubmission's first one) leads them all."""
    facility, episode = episodes[0]
    times = [RECORDED + timedelta(milliseconds=n) for n in (0, 1, 1000, 86_400_000)]
    ids = [
        _of(map_episode(facility, episode, "p1", SOURCE, at), "Encounter")[0]["id"] for at in times
    ]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    kept = map_episode(facility, episode, "p1", SOURCE, RECORDED, prefix="0123456789ab")
    assert {prefix_of(r["id"]) for r in kept.resources} == {"0123456789ab"}
    with pytest.raises(ValueError):
        id_prefix(datetime(1960, 1, 1, tzinfo=UTC))


def test_a_corrected_row_keeps_ids_and_changes_the_hash(
    episodes: list[tuple[str, Episode]],
) -> None:
    facility, episode = _first(episodes, lambda e: len(e.get("XML2", ())) >= 2)
    before = _map(facility, episode)
    corrected = copy.deepcopy(episode)
    corrected["XML2"][1]["SO_LUONG"] = "99.000"
    after = _map(facility, corrected)
    assert [r["id"] for r in after.resources] == [r["id"] for r in before.resources]
    assert after.content_hash != before.content_hash
    changed = [a for a, b in zip(after.resources, before.resources, strict=True) if a != b]
    assert [r["resourceType"] for r in changed] == ["MedicationRequest"]
    assert changed[0]["dispenseRequest"]["quantity"]["value"] == 99

    # The same rows from another file: same hash, only the Provenance names the new file.
    again = _map(facility, copy.deepcopy(episode), SourceFile("other.xml", "cd" * 32, RECORDED))
    assert again.content_hash == before.content_hash == content_hash(facility, episode)
    assert again.resources[:-1] == before.resources[:-1]
    assert again.resources[-1]["id"] == before.resources[-1]["id"]


def test_references_resolve_within_the_episode(episodes: list[tuple[str, Episode]]) -> None:
    for facility, episode in episodes:
        mapped = _map(facility, episode)
        known = {f"{r['resourceType']}/{r['id']}" for r in mapped.resources}
        for resource in mapped.resources:
            for reference in _references(resource):
                if reference.startswith("Patient/"):
                    assert reference == "Patient/person-1"
                else:
                    assert reference in known, (resource["resourceType"], reference)


def test_inpatient_encounter(episodes: list[tuple[str, Episode]]) -> None:
    facility, episode = _first(episodes, lambda e: e["XML1"][0]["MA_LOAI_KCB"] == "03")
    x1 = episode["XML1"][0]
    encounter = _of(_map(facility, episode), "Encounter")[0]
    assert encounter["class"]["code"] == "IMP"
    assert encounter["status"] == "finished"
    assert encounter["period"] == {"start": _vn(x1["NGAY_VAO"]), "end": _vn(x1["NGAY_RA"])}
    assert encounter["length"]["value"] == int(x1["SO_NGAY_DTRI"])
    assert encounter["identifier"][0] == {
        "system": f"urn:ytehub:sid:ma-lk:{facility}",
        "value": x1["MA_LK"],
    }
    assert encounter["serviceProvider"]["identifier"]["value"] == facility
    assert encounter["location"][0]["location"]["identifier"]["value"] == x1["MA_KHOA"]
    disposition = encounter["hospitalization"]["dischargeDisposition"]["coding"]
    assert {"system": "urn:ytehub:cs:ma-loai-rv", "code": x1["MA_LOAI_RV"]}.items() <= disposition[
        1
    ].items()
    outpatient = _first(episodes, lambda e: e["XML1"][0]["MA_LOAI_KCB"] == "01")
    assert _of(_map(*outpatient), "Encounter")[0]["class"]["code"] == "AMB"


def test_emergency_death_and_transfer_codes(episodes: list[tuple[str, Episode]]) -> None:
    facility, episode = _first(episodes, lambda e: e["XML1"][0]["MA_LOAI_KCB"] == "01")
    changed = copy.deepcopy(episode)
    changed["XML1"][0].update(MA_DOITUONG_KCB="2", KET_QUA_DTRI="5", MA_LOAI_RV="1")
    encounter = _of(_map(facility, changed), "Encounter")[0]
    assert encounter["class"]["code"] == "EMER"
    assert encounter["hospitalization"]["admitSource"]["coding"][0]["code"] == "emd"
    assert encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "exp"
    changed["XML1"][0].update(KET_QUA_DTRI="3", MA_LOAI_RV="5", MA_LOAI_KCB="04")
    encounter = _of(_map(facility, changed), "Encounter")[0]
    assert encounter["class"]["code"] == "SS"
    assert encounter["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "other-hcf"
    validate(encounter)


def test_principal_and_secondary_conditions(episodes: list[tuple[str, Episode]]) -> None:
    facility, episode = _first(episodes, lambda e: e["XML1"][0]["MA_BENH_KT"])
    x1 = episode["XML1"][0]
    mapped = _map(facility, episode)
    conditions = _of(mapped, "Condition")
    codes = [c["code"]["coding"][0]["code"] for c in conditions]
    assert codes == [x1["MA_BENH_CHINH"], *x1["MA_BENH_KT"].split(";")]
    assert all(
        c["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10" for c in conditions
    )
    texts = [t.strip() for t in x1["CHAN_DOAN_RV"].split(";")]
    assert [c["code"]["text"] for c in conditions] == texts
    encounter = _of(mapped, "Encounter")[0]
    assert all(c["encounter"]["reference"] == f"Encounter/{encounter['id']}" for c in conditions)
    diagnoses = encounter["diagnosis"]
    assert diagnoses[0]["condition"]["reference"] == f"Condition/{conditions[0]['id']}"
    assert diagnoses[0]["rank"] == 1
    assert diagnoses[0]["use"]["coding"][0]["code"] == "DD"
    assert [d["use"]["coding"][0]["code"] for d in diagnoses[1:]] == ["CM"] * (len(codes) - 1)


def test_drugs(episodes: list[tuple[str, Episode]]) -> None:
    facility, episode = _first(
        episodes, lambda e: e["XML1"][0]["MA_LOAI_KCB"] == "01" and e.get("XML2")
    )
    row = episode["XML2"][0]
    request = _of(_map(facility, episode), "MedicationRequest")[0]
    assert request["medicationCodeableConcept"] == {
        "coding": [{"system": "urn:ytehub:sid:drug-code", "code": row["MA_THUOC"]}],
        "text": row["TEN_THUOC"],
    }
    assert request["dosageInstruction"][0]["text"] == row["LIEU_DUNG"]
    assert request["dispenseRequest"]["quantity"]["value"] == float(row["SO_LUONG"])
    assert request["dispenseRequest"]["quantity"]["unit"] == row["DON_VI_TINH"]
    assert request["authoredOn"] == _vn(row["NGAY_YL"])
    assert request["requester"]["identifier"]["value"] == row["MA_BAC_SI"]
    assert request["dispenseRequest"]["expectedSupplyDuration"]["code"] == "d"

    # A drug pick-up without examination (07): dispensed, nothing ordered.
    pickup = copy.deepcopy(episode)
    pickup["XML1"][0]["MA_LOAI_KCB"] = "07"
    mapped = _map(facility, pickup)
    assert not _of(mapped, "MedicationRequest")
    dispenses = _of(mapped, "MedicationDispense")
    assert len(dispenses) == len(episode["XML2"])
    for dispense in dispenses:
        validate(dispense)


def test_observations_and_reports(episodes: list[tuple[str, Episode]]) -> None:
    facility, episode = _first(
        episodes,
        lambda e: any(r.get("MA_CHI_SO") and r.get("DON_VI_DO") for r in e.get("XML4", ())),
    )
    mapped = _map(facility, episode)
    row = next(r for r in episode["XML4"] if r.get("MA_CHI_SO") and r.get("DON_VI_DO"))
    observation = next(
        o for o in _of(mapped, "Observation") if o["code"]["coding"][0]["code"] == row["MA_CHI_SO"]
    )
    assert observation["valueQuantity"]["value"] == pytest.approx(float(row["GIA_TRI"]))
    assert observation["valueQuantity"]["unit"] == row["DON_VI_DO"]
    assert observation["issued"] == _vn(row["NGAY_KQ"])
    reports = [
        r
        for r in _of(mapped, "DiagnosticReport")
        if {"reference": f"Observation/{observation['id']}"} in r["result"]
    ]
    assert len(reports) == 1
    assert reports[0]["code"]["coding"][0]["code"] == row["MA_DICH_VU"]
    in_reports = {ref["reference"] for r in _of(mapped, "DiagnosticReport") for ref in r["result"]}
    assert {f"Observation/{o['id']}" for o in _of(mapped, "Observation")} == in_reports

    # Values that are not plain numbers.
    changed = copy.deepcopy(episode)
    target = next(r for r in changed["XML4"] if r.get("MA_CHI_SO"))
    target["GIA_TRI"] = "<0.5"
    first = _of(_map(facility, changed), "Observation")[changed["XML4"].index(target)]
    assert first["valueQuantity"]["comparator"] == "<"
    assert first["valueQuantity"]["value"] == 0.5
    target["GIA_TRI"] = "Dương tính"
    first = _of(_map(facility, changed), "Observation")[changed["XML4"].index(target)]
    assert first["valueString"] == "Dương tính"
    validate(first)


def test_notes_documents_referral_appointment_tuberculosis(
    episodes: list[tuple[str, Episode]],
) -> None:
    facility, episode = _first(episodes, lambda e: "XML5" in e and "XML7" in e)
    compositions = _of(_map(facility, episode), "Composition")
    by_table = {c["type"]["coding"][-1]["code"]: c for c in compositions}
    assert len(by_table["XML5"]["section"]) == len(episode["XML5"])
    assert by_table["XML7"]["title"] == "Giấy ra viện"
    day = episode["XML7"][0]["NGAY_CT"]
    assert by_table["XML7"]["date"] == f"{day[:4]}-{day[4:6]}-{day[6:]}"

    facility, episode = _first(episodes, lambda e: "XML13" in e)
    referral = _of(_map(facility, episode), "ServiceRequest")[0]
    assert referral["performer"][0]["identifier"]["value"] == episode["XML13"][0]["MA_NOI_DEN"]
    assert referral["identifier"][0]["value"] == episode["XML13"][0]["GIAY_CHUYEN_TUYEN"]

    facility, episode = _first(episodes, lambda e: "XML14" in e)
    appointment = _of(_map(facility, episode), "Appointment")[0]
    assert appointment["status"] == "booked"
    assert appointment["start"] == _vn(episode["XML14"][0]["NGAY_HEN_KL"])

    found = [(f, e) for f, e in episodes if "XML15" in e]
    for facility, episode in found:
        mapped = _map(facility, episode)
        care = _of(mapped, "EpisodeOfCare")[0]
        assert _of(mapped, "Encounter")[0]["episodeOfCare"] == [
            {"reference": f"EpisodeOfCare/{care['id']}"}
        ]


def test_provenance(episodes: list[tuple[str, Episode]]) -> None:
    facility, episode = _first(episodes, lambda e: "XML4" in e)
    mapped = _map(facility, episode)
    provenance = mapped.resources[-1]
    assert provenance["resourceType"] == "Provenance"
    targets = [t["reference"] for t in provenance["target"]]
    expected = [f"{r['resourceType']}/{r['id']}" for r in mapped.resources[:-1]]
    assert targets == [*expected, "Patient/person-1"]
    assert provenance["recorded"] == "2025-08-19T01:05:00.000Z"
    entity = provenance["entity"][0]
    assert entity["role"] == "source"
    assert entity["what"]["identifier"] == {
        "system": "urn:ytehub:sid:file-sha256",
        "value": SOURCE.sha256,
    }
    assert entity["what"]["display"] == SOURCE.name
    assert provenance["agent"][0]["who"]["identifier"]["value"] == facility


def test_odd_input(episodes: list[tuple[str, Episode]]) -> None:
    facility, episode = episodes[0]
    odd = copy.deepcopy(episode)
    odd["XML6"] = [{"MA_LK": episode["XML1"][0]["MA_LK"]}]  # not mapped: skipped
    odd["XML1"][0]["NGAY_VAO"] = "202513011200"  # month 13: no start, still valid
    mapped = _map(facility, odd)
    encounter = _of(mapped, "Encounter")[0]
    assert "start" not in encounter.get("period", {})
    for resource in mapped.resources:
        validate(resource)
    # Every element empty (or blank) but MA_LK: fewer facts, never an invalid resource.
    for facility, episode in episodes[:200]:
        for blank in ("", "  "):
            emptied = {
                table: [{k: (v if k == "MA_LK" else blank) for k, v in row.items()} for row in rows]
                for table, rows in episode.items()
            }
            for resource in _map(facility, emptied).resources:
                validate(resource)
    with pytest.raises(ValueError):
        _map(facility, {"XML2": episode.get("XML2", [])})
    with pytest.raises(ValueError):
        _map(facility, {"XML1": [{"MA_LK": " "}]})
