"""FHIR errors: every failure under /fhir leaves as an OperationOutcome.

An issue names the offending element (``expression``, a FHIRPath-style location such as
``Patient.birthDate``) and says why, in Vietnamese and English.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ytehub.core.errors import Text

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue. ``code`` is from the FHIR IssueType value set
    (invalid, structure, required, value, not-found, deleted, conflict, not-supported, …)."""

    severity: Severity
    code: str
    text: Text
    expression: str | None = None

    def as_fhir(self, lang: str | None = None) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.text.in_language(lang),
            "details": {"text": f"{self.text.vi} / {self.text.en}"},
        }
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


@dataclass
class FhirError(Exception):
    """A FHIR interaction failed with ``status``; ``issues`` say where and why."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def single(
        cls, status: int, code: str, vi: str, en: str, expression: str | None = None
    ) -> FhirError:
        return cls(status, [Issue("error", code, Text(vi, en), expression)])

    def __str__(self) -> str:
        return "; ".join(f"{i.code}: {i.text.en}" for i in self.issues)


def operation_outcome(issues: list[Issue], lang: str | None = None) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.as_fhir(lang) for i in issues]}
