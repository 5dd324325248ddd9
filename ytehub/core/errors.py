"""Domain errors with a stable code and a message in Vietnamese and English.

Every layer raises :class:`DomainError`; the API turns it into a problem-details
document (and, under /fhir, an OperationOutcome) in exactly one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Text:
    """A message in both interface languages; Vietnamese is the default."""

    vi: str
    en: str

    def in_language(self, lang: str | None) -> str:
        return self.en if lang == "en" else self.vi

    def format(self, **values: Any) -> Text:
        return Text(self.vi.format(**values), self.en.format(**values))


@dataclass
class DomainError(Exception):
    """A failure the caller can act on: stable ``code``, HTTP ``status``, bilingual message."""

    code: str
    message: Text
    status: int = 400
    field: str | None = None
    value: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message.en}"

    def as_problem(self, lang: str | None = None) -> dict[str, Any]:
        """RFC 9457 problem details, with both languages so a client can pick."""
        problem: dict[str, Any] = {
            "type": f"urn:ytehub:problem:{self.code}",
            "title": self.message.in_language(lang),
            "status": self.status,
            "code": self.code,
            "message": {"vi": self.message.vi, "en": self.message.en},
        }
        if self.field is not None:
            problem["field"] = self.field
        if self.value is not None:
            problem["value"] = self.value
        problem.update(self.extra)
        return problem
