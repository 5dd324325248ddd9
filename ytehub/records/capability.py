"""The CapabilityStatement, generated from what the server really implements."""

from __future__ import annotations

from typing import Any

from ytehub import __version__
from ytehub.records.search_params import SEARCHABLE_TYPES, params_for

INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)


def capability_statement(base_url: str) -> dict[str, Any]:
    resources = []
    for resource_type in SEARCHABLE_TYPES:
        params = params_for(resource_type)
        resources.append(
            {
                "type": resource_type,
                "interaction": [{"code": code} for code in INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalUpdate": True,
                "conditionalDelete": "not-supported",
                "searchInclude": sorted(
                    f"{resource_type}:{name}" for name, p in params.items() if p.type == "reference"
                ),
                "searchParam": [
                    {"name": name, "type": p.type} for name, p in sorted(params.items())
                ],
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-24",
        "kind": "instance",
        "software": {"name": "ytehub", "version": __version__},
        "implementation": {"description": "ytehub FHIR R4 record store", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth2 bearer tokens from /auth/token with SMART-style scopes",
                },
                "resource": resources,
                "searchParam": [
                    {"name": n, "type": t} for n, t in (("_id", "token"), ("_lastUpdated", "date"))
                ],
            }
        ],
    }
