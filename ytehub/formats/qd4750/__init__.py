"""The national BHYT claim output format: QĐ 130/QĐ-BYT (18/01/2023) as amended by QĐ 4750/QĐ-BYT.

What it covers (project reference notes ``vn-formats.md`` §1.2–§1.5):

* :data:`TABLES` — the 16 tables (check-in "XML0", "XML1" … "XML15") with their elements in the
  official order, types and maximum sizes *after* the 4750 amendments, generated from the
  official appendix workbook into ``tables.json`` by ``scripts/gen_qd4750_spec.py``. Required
  flags come from a vendor validation workbook (a second opinion). The inner XML tags come from
  BHXH's XSDs as observed in implementations (§1.3); XML12's are unconfirmed.
* fast writers for the inner table documents, the ``GIAMDINHHS`` envelope (base64 inner XML in
  ``NOIDUNGFILE``) and the separate check-in document;
* safe readers for files coming from facilities (no DTDs, entities or network; size and
  encoding limits; stable error codes ``qd4750.*``);
* value formatting helpers (money 2 decimals, quantities 3, ``yyyymmddHHMM``, ``yyyymmdd``).

QĐ 3176/QĐ-BYT (2024, changes XML13 only) is not applied: its full text was not obtained.
"""

from __future__ import annotations

from ytehub.formats.qd4750._errors import CODES
from ytehub.formats.qd4750.fmt import fmt_date, fmt_datetime, fmt_money, fmt_qty
from ytehub.formats.qd4750.reader import (
    DEFAULT_MAX_BYTES,
    Envelope,
    read_checkin,
    read_envelope,
    read_table,
)
from ytehub.formats.qd4750.spec import ENVELOPE_TABLES, TABLES, Element, TableSpec
from ytehub.formats.qd4750.writer import render_checkin, render_envelope, render_table

__all__ = [
    "CODES",
    "DEFAULT_MAX_BYTES",
    "ENVELOPE_TABLES",
    "TABLES",
    "Element",
    "Envelope",
    "TableSpec",
    "fmt_date",
    "fmt_datetime",
    "fmt_money",
    "fmt_qty",
    "read_checkin",
    "read_envelope",
    "read_table",
    "render_checkin",
    "render_envelope",
    "render_table",
]
