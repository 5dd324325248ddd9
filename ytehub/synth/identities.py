"""Facility patient records of a synthetic population, with ground truth: the test bed of the
client registry (who is who across facilities).

Each person is recorded by their commune's health station and by one to three other
facilities of the province, each time as that facility's clerk and software would write them
(:class:`~ytehub.synth.defects.IdentityFactory`, defects at the given rates).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date

from ytehub.synth.defects import DefectRates, IdentityFactory
from ytehub.synth.facilities import generate_facilities
from ytehub.synth.model import PatientIdentity
from ytehub.synth.people import PopulationConfig, generate_people


def facility_records(
    people: int,
    seed: int = 1,
    rates: DefectRates | None = None,
    province_code: str = "79",
    max_facilities: int = 3,
) -> Iterator[PatientIdentity]:
    """Every record facilities hold of ``people`` residents (about 2.5 per person)."""
    workforce = generate_facilities(province_code, seed)
    facilities = workforce.facilities
    stations = {f.commune_code: f for f in facilities if f.level == "commune_station"}
    config = PopulationConfig(people=people, province_code=province_code, seed=seed)
    factory = IdentityFactory(seed, rates or DefectRates(), date(2025, 7, 1))
    rng = random.Random(f"registry-records:{seed}")
    for person in generate_people(config, facilities):
        chosen = []
        home = stations.get(person.commune_code)
        if home is not None:
            chosen.append(home)
        for facility in rng.sample(facilities, rng.randint(1, max_facilities)):
            if facility not in chosen:
                chosen.append(facility)
        for facility in chosen:
            yield from factory.identities(person, facility)
