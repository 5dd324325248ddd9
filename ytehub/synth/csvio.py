"""CSV writing shared by the synthetic exports: UTF-8 without BOM, CRLF, RFC 4180 quoting."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol


class CsvRow(Protocol):
    def csv_row(self) -> Mapping[str, object]: ...


def write_rows(
    rows: Iterable[CsvRow],
    path_or_handle: str | Path | IO[str],
    columns: Sequence[str],
    *,
    header: bool = True,
) -> int:
    """Write rows; returns how many. A path is opened with ``newline=""`` so the CRLF line
    ends are exact (a handle should be opened the same way); ``header=False`` appends rows
    to a file written in chunks."""
    if isinstance(path_or_handle, str | Path):
        with Path(path_or_handle).open("w", encoding="utf-8", newline="") as handle:
            return write_rows(rows, handle, columns, header=header)
    writer = csv.DictWriter(path_or_handle, fieldnames=list(columns), lineterminator="\r\n")
    if header:
        writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(row.csv_row())
        count += 1
    return count


def rows_text(rows: Iterable[CsvRow], columns: Sequence[str]) -> str:
    """The CSV as a string (for tests and small exports)."""
    buffer = io.StringIO(newline="")
    write_rows(rows, buffer, columns)
    return buffer.getvalue()
