"""Watch folders where facilities drop files (by SFTP): ingest each file once its size has
stopped changing, then move it to ``done/`` or ``rejected/`` (with the reason beside it)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ytehub.core.db import Database
from ytehub.ingest.pipeline import FileOutcome, Ingest, candidate_files, inputs, rejected_file

DONE, REJECTED = "done", "rejected"


def _waiting(folders: Iterable[Path]) -> Iterator[Path]:
    for path in candidate_files(folders):
        if path.is_file() and not {DONE, REJECTED} & set(path.parent.parts[-1:]):
            yield path


def _move(path: Path, folder: Path, refused: FileOutcome | None) -> None:
    target = path.parent / folder
    target.mkdir(exist_ok=True)
    destination = target / path.name
    if destination.exists():
        destination = target / f"{path.stem}.{time.time_ns()}{path.suffix}"
    path.replace(destination)
    if refused is not None:
        report = destination.with_name(destination.name + ".report.json")
        report.write_text(
            json.dumps(refused.as_dict("vi"), ensure_ascii=False, indent=2), encoding="utf-8"
        )


def watch(
    db: Database,
    folders: list[Path],
    interval: float = 10.0,
    rounds: int | None = None,
    actor: str | None = None,
) -> Iterator[FileOutcome]:
    """Look every ``interval`` seconds, ``rounds`` times (forever when None)."""
    run = Ingest(db, channel="watch", actor=actor)
    last_seen: dict[Path, tuple[int, int]] = {}
    for look in itertools.count(1):
        for path in list(_waiting(folders)):
            stat = path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
            if last_seen.get(path) != signature:
                last_seen[path] = signature  # still being written, or new: look again later
                continue
            del last_seen[path]
            outcomes = [
                run.file_now(name, data)
                if isinstance(data, bytes)
                else rejected_file(name, name.encode(), data)
                for name, data in inputs([path])
            ]
            yield from outcomes
            refused = next((o for o in outcomes if o.status == "rejected"), None)
            _move(path, Path(REJECTED if refused else DONE), refused)
        if rounds is not None and look >= rounds:
            return
        time.sleep(interval)
