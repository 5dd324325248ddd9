"""The `ytehub` command: init, serve, demo, users, clients, audit, units, registry."""

from __future__ import annotations

import getpass
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ytehub.core import audit, migrate, units
from ytehub.core.db import Database
from ytehub.core.errors import DomainError
from ytehub.core.i18n import N_, translator
from ytehub.core.models import AuditHead
from ytehub.core.security import AreaScope, roles, service
from ytehub.core.settings import Settings

app = typer.Typer(
    help="ytehub — nền tảng dữ liệu y tế cấp tỉnh / provincial health data platform",
    no_args_is_help=True,
)
users_app = typer.Typer(help="Tài khoản người dùng / user accounts", no_args_is_help=True)
clients_app = typer.Typer(
    help="Hệ thống cơ sở y tế (client) / facility systems", no_args_is_help=True
)
audit_app = typer.Typer(help="Nhật ký truy cập / audit trail", no_args_is_help=True)
units_app = typer.Typer(help="Đơn vị hành chính / administrative units", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(clients_app, name="clients")
app.add_typer(audit_app, name="audit")
app.add_typer(units_app, name="units")
registry_app = typer.Typer(
    help="Chỉ mục người bệnh / client registry (master person index)", no_args_is_help=True
)
app.add_typer(registry_app, name="registry")

console = Console()
DEMO_ADMIN = "admin"


def _settings() -> Settings:
    return Settings()


def _(message: str) -> str:
    return translator(_settings().default_language)(message)


def done(label: str, value: object = "") -> None:
    console.print(f"[green]✓[/green] {label}: {value}")


def note(label: str, value: object) -> None:
    console.print(f"  {label}: {value}")


def failed(label: str, value: object = None, code: int = 1) -> typer.Exit:
    console.print(f"[red]✗ {label}" + (f": {value}" if value is not None else "") + "[/red]")
    return typer.Exit(code=code)


def _progress(known_total: bool = True) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}" if known_total else "{task.completed:,}"),
        TimeElapsedColumn(),
        console=console,
    )


def _fail(error: DomainError) -> typer.Exit:
    return failed(error.message.in_language(_settings().default_language))


def _database(settings: Settings) -> Database:
    return Database(settings.resolved_database_url)


def _cli_audit(action: str, **fields: object) -> audit.AuditEntry:
    return audit.AuditEntry(
        action=action,
        actor=f"cli:{getpass.getuser()}",
        role="admin",
        purpose="HSYSADMIN",
        source="cli",
        **fields,  # type: ignore[arg-type]
    )


def initialise(settings: Settings) -> Database:
    """Create the data directory, secret key and schema (or upgrade it); safe to repeat."""
    made_key = settings.ensure_secret_key()
    db = _database(settings)
    migrate.upgrade(db.engine)
    with db.session() as session:
        service.prune_expired(session, settings)
    if made_key:
        console.print(_("Created a new secret key in the data directory."))
    return db


@app.command()
def init() -> None:
    """Tạo hoặc nâng cấp cơ sở dữ liệu / create or upgrade the database."""
    settings = _settings()
    db = initialise(settings)
    done(_("Database ready"), db.engine.url.render_as_string())
    note(_("Schema version"), migrate.current_revision(db.engine))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
) -> None:
    """Chạy máy chủ web và API / run the web console and API."""
    import uvicorn

    from ytehub.api import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=False,
        log_level="info",
        access_log=False,  # every request that matters is in the audit trail already
    )


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    people: Annotated[int, typer.Option(help="People in the demo province", min=1)] = 5_000,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the server")
    ] = True,
) -> None:
    """Khởi tạo bản demo và mở bảng điều khiển / set up the demo and open the console."""
    settings = _settings()
    db = initialise(settings)
    province_dir = settings.data_dir / "province"
    if not (province_dir / "manifest.json").exists():
        console.print(_("Generating a synthetic province for the demo (once)."))
        shutil.rmtree(province_dir, ignore_errors=True)
        synthesise(province_dir, people, settings.province_code, seed=1, days=365)
    demo_data(db, province_dir)
    password = service.generate_password()
    with db.session() as session:
        try:
            service.find_user(session, DEMO_ADMIN)
            service.reset_password(session, DEMO_ADMIN, password)
            audit.record(
                session,
                _cli_audit("users.reset_password", resource_type="User", resource_id=DEMO_ADMIN),
            )
        except DomainError:
            service.create_user(
                session,
                username=DEMO_ADMIN,
                full_name="Quản trị demo",
                password=password,
                role="admin",
                area=AreaScope.province(),
            )
            audit.record(
                session, _cli_audit("users.create", resource_type="User", resource_id=DEMO_ADMIN)
            )
    address = f"http://{settings.host}:{port or settings.port}/"
    table = Table(title=_("ytehub demo"), show_header=False)
    table.add_row(_("Console"), address)
    table.add_row(_("Username"), DEMO_ADMIN)
    table.add_row(_("Password"), password)
    table.add_row(_("Data directory"), str(settings.data_dir.resolve()))
    console.print(table)
    console.print(_("The password is new each time the demo starts."))
    if serve_after:
        serve(host=settings.host, port=port)


def demo_data(db: Database, province_dir: Path) -> None:
    """Ingest the demo province's facility files (skipped when already done: files are known
    by their hash) and check the persons against its population-register extract."""
    from sqlalchemy import select

    from ytehub.registry.models import PopulationEntry
    from ytehub.registry.verification import load_extract, verify_persons

    actor = f"cli:{getpass.getuser()}"
    console.print(_("Ingesting the demo province's QĐ 4750 files."))
    ingest_with_progress(db, [province_dir / "qd4750"], actor)
    with db.session() as session:
        loaded = session.scalar(select(PopulationEntry.so_dinh_danh).limit(1)) is not None
    if not loaded:
        load_extract(db, province_dir / "register" / "population-register.csv")
    with console.status(_("Verifying persons")):
        summary = verify_persons(db, only_unchecked=True)
    done(_("Verified"), f"{summary.verified:,}")


# --- synthetic province -----------------------------------------------------------------------


def synthesise(out: Path, people: int, province: str, seed: int, days: int) -> None:
    """Generate a province with a progress bar and print what was written."""
    from ytehub.synth.province import SynthConfig, generate_province

    config = SynthConfig(people=people, province_code=province, seed=seed, days=days)
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(_("Generating people and care"), total=people)
        summary = generate_province(
            config, out, progress=lambda n: progress.update(task, completed=min(n, people))
        )
        progress.update(task, completed=people)
    seconds = time.perf_counter() - started
    table = Table(title=_("Synthetic province"), show_header=False)
    for label, value in (
        (_("People"), summary.people),
        (_("Households"), summary.households),
        (_("Facilities"), summary.facilities),
        (_("Episodes"), summary.episodes),
        (_("Table rows"), summary.table_rows),
        (_("Facility files"), summary.facility_files),
        (_("Vaccinations"), summary.vaccinations),
        (_("115 calls"), summary.emergency_calls),
        (_("Outbreaks injected"), summary.outbreaks),
    ):
        table.add_row(label, f"{value:,}")
    table.add_row(_("Seconds"), f"{seconds:.1f}")
    console.print(table)
    done(_("Written to"), out)


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Output folder")],
    people: Annotated[int, typer.Option(help="Residents at the start", min=1)] = 20_000,
    province: Annotated[str, typer.Option(help="Province code (34 current provinces)")] = "79",
    seed: Annotated[int, typer.Option(help="Same seed, same bytes")] = 1,
    days: Annotated[int, typer.Option(help="Length of the simulated period", min=1)] = 365,
) -> None:
    """Sinh dữ liệu tỉnh giả lập / generate a synthetic province."""
    if units.province(province) is None:
        raise failed(_("No such unit"), province)
    if out.exists() and any(out.iterdir()):
        raise failed(_("The output folder is not empty"), out)
    synthesise(out, people, province, seed, days)


# --- users ------------------------------------------------------------------------------------


def parse_area(text: str) -> AreaScope:
    """`province`, `communes:26740,26743` or `facility:79001`."""
    kind, _sep, codes = text.partition(":")
    return AreaScope.from_parts(kind.strip(), [c.strip() for c in codes.split(",") if c.strip()])


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(roles())}")],
    full_name: Annotated[str, typer.Option("--name", help="Full name")] = "",
    area: Annotated[
        str, typer.Option(help="province | communes:CODE,… | facility:CODE")
    ] = "province",
    person_id: Annotated[str | None, typer.Option(help="Person id (citizen accounts)")] = None,
    password: Annotated[str | None, typer.Option(help="Generated when omitted")] = None,
) -> None:
    """Thêm tài khoản / add a user."""
    settings = _settings()
    chosen = password or service.generate_password()
    try:
        with _database(settings).session() as session:
            service.create_user(
                session,
                username=username,
                full_name=full_name or username,
                password=chosen,
                role=role,
                area=parse_area(area),
                person_id=person_id,
            )
            audit.record(
                session, _cli_audit("users.create", resource_type="User", resource_id=username)
            )
    except DomainError as error:
        raise _fail(error) from None
    done(_("User created"), username)
    if password is None:
        note(_("Password"), chosen)


@users_app.command("list")
def users_list() -> None:
    """Liệt kê tài khoản / list users."""
    settings = _settings()
    lang = settings.default_language
    with _database(settings).session() as session:
        users = service.list_users(session)
        audit.record(
            session, _cli_audit("users.list", resource_type="User", detail={"count": len(users)})
        )
    table = Table(_("Username"), _("Full name"), _("Role"), _("Area"), _("Status"))
    for user in users:
        table.add_row(
            user.username,
            user.full_name,
            roles()[user.role].label.in_language(lang),
            service.area_of(user).describe().in_language(lang),
            _("disabled") if user.disabled else _("active"),
        )
    console.print(table)


def _set_disabled(username: str, disabled: bool) -> None:
    action = "users.disable" if disabled else "users.enable"
    try:
        with _database(_settings()).session() as session:
            service.set_disabled(session, username, disabled)
            audit.record(session, _cli_audit(action, resource_type="User", resource_id=username))
    except DomainError as error:
        raise _fail(error) from None
    done(_("Disabled") if disabled else _("Enabled"), username)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Khóa tài khoản / disable a user (and revoke their sessions)."""
    _set_disabled(username, True)


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Mở khóa tài khoản / enable a user."""
    _set_disabled(username, False)


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password: Annotated[str | None, typer.Option(help="Generated when omitted")] = None,
) -> None:
    """Đặt lại mật khẩu / reset a password (and revoke the user's sessions)."""
    chosen = password or service.generate_password()
    try:
        with _database(_settings()).session() as session:
            service.reset_password(session, username, chosen)
            audit.record(
                session,
                _cli_audit("users.reset_password", resource_type="User", resource_id=username),
            )
    except DomainError as error:
        raise _fail(error) from None
    done(_("Password reset"), username)
    if password is None:
        note(_("Password"), chosen)


# --- facility systems -------------------------------------------------------------------------


@clients_app.command("add")
def clients_add(
    client_id: str,
    facility: Annotated[str, typer.Option(help="5-digit facility code (mã CSKCB)")],
    name: Annotated[str, typer.Option(help="Display name")] = "",
) -> None:
    """Đăng ký hệ thống của cơ sở y tế / register a facility system."""
    from ytehub.core.ids import check_facility_code

    checked = check_facility_code(facility)
    try:
        if not checked.valid:
            raise checked.to_error("facility")
        with _database(_settings()).session() as session:
            _client, secret = service.create_client(
                session, client_id=client_id, name=name or client_id, facility_code=checked.value
            )
            audit.record(
                session, _cli_audit("clients.create", resource_type="Client", resource_id=client_id)
            )
    except DomainError as error:
        raise _fail(error) from None
    done(_("Client registered"), client_id)
    note(_("Secret (shown once)"), secret)


@clients_app.command("list")
def clients_list() -> None:
    """Liệt kê hệ thống đã đăng ký / list facility systems."""
    from sqlalchemy import select

    from ytehub.core.models import Client

    with _database(_settings()).session() as session:
        clients = session.scalars(select(Client).order_by(Client.client_id)).all()
    table = Table(_("Client"), _("Name"), _("Facility"), _("Status"))
    for client in clients:
        table.add_row(
            client.client_id,
            client.name,
            ",".join(client.area_codes),
            _("disabled") if client.disabled else _("active"),
        )
    console.print(table)


# --- audit ------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Kiểm tra chuỗi băm của nhật ký / verify the audit hash chain."""
    with _database(_settings()).session() as session:
        head = session.get(AuditHead, 1)
        total = head.seq if head else 0
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(_("Verifying audit trail"), total=total)
            report = audit.verify(session, on_progress=lambda n: progress.update(task, completed=n))
    if report.ok:
        done(_("Audit trail intact"), report.checked)
        note(_("Head hash"), report.head_hash)
        return
    raise failed(_("Audit trail broken at event"), f"{report.broken_seq} ({report.reason})", code=2)


@audit_app.command("archive")
def audit_archive(
    before: Annotated[str, typer.Option(help="Archive events before this date (YYYY-MM-DD)")],
    out: Annotated[Path, typer.Option(help="Archive file to write (.jsonl.gz)")],
) -> None:
    """Chuyển nhật ký cũ ra tệp lưu trữ / move old audit events to an archive file."""
    cutoff = datetime.fromisoformat(before).replace(tzinfo=UTC)
    if out.exists():
        raise failed(_("File already exists"), out)
    with _database(_settings()).session() as session:
        moved = audit.archive(session, cutoff, out)
        audit.record(
            session, _cli_audit("audit.archive", detail={"events": moved, "file": out.name})
        )
    done(_("Events archived"), moved)
    if moved:
        note(_("Archive file"), out)


@audit_app.command("verify-archive")
def audit_verify_archive(path: Path) -> None:
    """Kiểm tra một tệp lưu trữ nhật ký / verify an audit archive file."""
    report = audit.verify_archive(path)
    if not report.ok:
        raise failed(
            _("Audit trail broken at event"), f"{report.broken_seq} ({report.reason})", code=2
        )
    done(_("Audit trail intact"), report.checked)
    note(_("Head hash"), report.head_hash)


# --- administrative units ---------------------------------------------------------------------


@units_app.command("search")
def units_search(
    query: str,
    province: Annotated[str | None, typer.Option(help="Province code to search within")] = None,
    limit: int = 20,
) -> None:
    """Tìm đơn vị hành chính theo tên (có hoặc không dấu) / search units by name."""
    table = Table(_("Code"), _("Name"), _("Kind"), _("Province"))
    for unit in units.search(query, province_code=province, limit=limit):
        parent = getattr(unit, "province_code", "")
        parent_name = units.province(parent).name if parent else ""
        table.add_row(unit.code, unit.name, unit.kind, parent_name)
    console.print(table)


@units_app.command("show")
def units_show(code: str) -> None:
    """Xem một tỉnh (2 số) hoặc xã/phường (5 số) / show a province or commune."""
    if len(code) <= 2:
        found = units.province(code)
        if found is None:
            raise failed(_("No such unit"), code)
        console.print(
            f"{found.code} {found.name} ({found.kind}) — "
            f"{len(units.communes(found.code))} " + _("communes")
        )
        return
    commune = units.commune(code)
    if commune is None:
        raise failed(_("No such unit"), code)
    parent = units.province(commune.province_code)
    console.print(
        f"{commune.code} {commune.name} ({commune.kind}), {parent.name if parent else ''}"
    )


@units_app.command("convert")
def units_convert(
    old: Annotated[
        str | None, typer.Argument(help="Old commune code (5 digits) or province (2)")
    ] = None,
    address: Annotated[str | None, typer.Option(help="Legacy free-text address")] = None,
) -> None:
    """Chuyển mã/địa chỉ cũ (trước 7/2025) sang đơn vị mới / convert legacy codes or addresses."""
    if address:
        converted = units.convert_address(address)
        if converted is None:
            raise failed(_("No province recognised in the address"))
        commune = converted.commune
        console.print(
            f"→ {converted.province.code} {converted.province.name}"
            + (f" / {commune.code} {commune.name}" if commune else "")
        )
        if converted.split:
            console.print(
                "  "
                + _("Split commune; candidates")
                + ": "
                + ", ".join(f"{c.code} {c.name}" for c in converted.candidates)
            )
        return
    if not old:
        raise failed(_("Give an old code or --address"))
    if len(old) <= 2:
        province = units.convert_legacy_province(old)
        if province is None:
            raise failed(_("No such unit"), old)
        console.print(f"{old} → {province.code} {province.name}")
        return
    legacy = units.convert_legacy_commune(old)
    if legacy is None or legacy.commune is None:
        raise failed(_("No such unit"), old)
    console.print(
        f"{old} {legacy.old_name}, {legacy.old_district_name}, {legacy.old_province_name}"
        f" → {legacy.commune.code} {legacy.commune.name}, {legacy.province.name}"
    )
    if legacy.split:
        console.print(
            "  "
            + _("Split commune; candidates")
            + ": "
            + ", ".join(f"{c.code} {c.name}" for c in legacy.candidates)
        )


# --- ingest -----------------------------------------------------------------------------------


INGEST_STATUS = {"done": N_("done"), "duplicate": N_("duplicate"), "rejected": N_("rejected")}


def _ingest_table(outcomes: list[Any]) -> Table:
    table = Table(title=_("Ingest summary"))
    for column in (
        _("File"),
        _("Status"),
        _("Episodes"),
        _("Stored"),
        _("Replaced"),
        _("Unchanged"),
        _("Refused"),
        _("Errors"),
        _("Warnings"),
    ):
        table.add_column(column)
    for o in outcomes[-50:]:
        label = _(INGEST_STATUS.get(o.status, o.status))
        status = label if o.reason is None else f"{label}: {o.reason.en[:60]}"
        table.add_row(
            Path(o.name).name[:40],
            status,
            *(
                f"{n:,}"
                for n in (
                    o.episodes,
                    o.stored,
                    o.replaced,
                    o.unchanged,
                    o.refused,
                    o.errors,
                    o.warnings,
                )
            ),
        )
    if len(outcomes) > 1:
        table.add_row(
            _("Total"),
            f"{len(outcomes):,} " + _("files"),
            *(
                f"{sum(getattr(o, f) for o in outcomes):,}"
                for f in (
                    "episodes",
                    "stored",
                    "replaced",
                    "unchanged",
                    "refused",
                    "errors",
                    "warnings",
                )
            ),
        )
    return table


def ingest_with_progress(db: Database, paths: list[Path], actor: str) -> list[Any]:
    """Ingest with a progress bar over files and the current file's episodes; print the
    summary table and the rate."""
    from ytehub.ingest import pipeline

    listed = list(pipeline.candidate_files(paths))
    outcomes: list[Any] = []
    started = time.perf_counter()
    with _progress(known_total=False) as progress:
        files = progress.add_task(_("Files"), total=len(listed))
        episodes = progress.add_task(_("Episodes in the current file"), total=None)

        def on_file(outcome: Any) -> None:
            outcomes.append(outcome)
            progress.advance(files)
            progress.update(episodes, completed=0, total=None)

        pipeline.ingest_paths(
            db,
            listed,
            actor=actor,
            on_file=on_file,
            on_episodes=lambda n: progress.update(episodes, completed=n),
        )
    console.print(_ingest_table(outcomes))
    seconds = time.perf_counter() - started
    total = sum(o.episodes for o in outcomes)
    done(_("Episodes per second"), f"{total / seconds:,.0f}" if seconds else "-")
    return outcomes


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files, folders or zip archives")],
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep watching the folders for new files")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks (--watch)")] = 10.0,
    rounds: Annotated[int | None, typer.Option(help="Stop watching after this many looks")] = None,
) -> None:
    """Nhận dữ liệu QĐ 4750 / ingest QĐ 4750 (QĐ 130) files into the health record."""
    from ytehub.ingest import watch as watcher

    db = _database(_settings())
    actor = f"cli:{getpass.getuser()}"
    if watch:
        for outcome in watcher.watch(db, paths, interval=interval, rounds=rounds, actor=actor):
            console.print(_ingest_table([outcome]))
        return
    outcomes = ingest_with_progress(db, paths, actor)
    if any(o.status == "rejected" for o in outcomes):
        raise failed(_("Some files were rejected"), sum(o.status == "rejected" for o in outcomes))


# --- client registry --------------------------------------------------------------------------


@registry_app.command("train")
def registry_train(
    max_records: Annotated[
        int, typer.Option(help="Records sampled for estimation", min=1_000)
    ] = 500_000,
) -> None:
    """Ước lượng mô hình ghép cặp từ dữ liệu / estimate the match model (Splink, EM)."""
    from sqlalchemy import select

    from ytehub.registry import service as registry
    from ytehub.registry.models import RegistrySource
    from ytehub.registry.training import estimate

    db = _database(_settings())
    with db.session() as session:
        records = [
            registry.record_of(fields)
            for fields in session.scalars(
                select(RegistrySource.fields).order_by(RegistrySource.id).limit(max_records)
            )
        ]
    if len(records) < 1_000:
        raise failed(_("Too few source records to estimate a model (need 1,000)"), len(records))
    with console.status(_("Estimating m and u probabilities with Splink")):
        model = estimate(records)
    with db.session() as session:
        version = registry.save_model(session, model, actor=f"cli:{getpass.getuser()}")
    table = Table(title=_("Match model"), show_header=True)
    table.add_column(_("Comparison"))
    table.add_column(_("Levels (m / u)"))
    for name, pairs in model.levels.items():
        table.add_row(name, "  ".join(f"{m:.3g}/{u:.3g}" for m, u in pairs))
    console.print(table)
    done(_("Model version"), version)


@registry_app.command("dedupe")
def registry_dedupe(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; change nothing")] = False,
) -> None:
    """Khử trùng lặp toàn bộ chỉ mục / deduplicate the whole index (Splink + clustering)."""
    from sqlalchemy import select

    from ytehub.registry import service as registry
    from ytehub.registry.dedupe import dedupe
    from ytehub.registry.models import RegistrySource

    db = _database(_settings())
    with db.session() as session:
        records = [registry.record_of(f) for f in session.scalars(select(RegistrySource.fields))]
        model = registry.active_model(session)
    if not records:
        raise failed(_("No source records in the registry"))
    with _progress() as progress:
        task = progress.add_task(_("Deduplicating"), total=100)
        result = dedupe(
            records,
            model,
            on_progress=lambda stage, fraction: progress.update(
                task, completed=round(100 * fraction), description=f"{_('Deduplicating')}: {stage}"
            ),
        )
    table = Table(title=_("Deduplication"), show_header=False)
    table.add_row(_("Source records"), f"{len(records):,}")
    table.add_row(_("Candidate pairs scored"), f"{result.pairs_scored:,}")
    table.add_row(_("Links"), f"{result.links:,}")
    table.add_row(_("Persons found"), f"{result.cluster_count:,}")
    table.add_row(_("Pairs to review"), f"{len(result.review):,}")
    table.add_row(_("Seconds"), f"{result.seconds.get('total', 0):.1f}")
    if not dry_run:
        with db.session() as session:
            applied = registry.apply_dedupe(
                session, result.clusters, result.review, actor=f"cli:{getpass.getuser()}"
            )
        table.add_row(_("Persons merged"), f"{applied.persons_merged:,}")
        table.add_row(_("Reviews added"), f"{applied.reviews_added:,}")
    console.print(table)


@registry_app.command("load-register")
def registry_load_register(path: Path) -> None:
    """Nạp trích xuất dữ liệu dân cư / load a population-register extract (CSV or Parquet)."""
    from ytehub.registry.verification import load_extract

    db = _database(_settings())
    with _progress(known_total=False) as progress:
        task = progress.add_task(_("Loading the population register"), total=None)
        try:
            result = load_extract(
                db, path, on_progress=lambda n: progress.update(task, completed=n)
            )
        except (OSError, ValueError) as error:
            raise failed(_("Cannot load the extract"), error) from None
    done(_("Rows loaded"), f"{result.loaded:,}")
    if result.skipped:
        note(_("Rows skipped (identity number not 12 digits)"), f"{result.skipped:,}")


@registry_app.command("verify")
def registry_verify(
    unchecked: Annotated[
        bool, typer.Option("--unchecked", help="Only persons never checked")
    ] = False,
) -> None:
    """Xác thực với dữ liệu dân cư / verify persons against the population register."""
    from ytehub.registry import service as registry
    from ytehub.registry.verification import verify_persons

    db = _database(_settings())
    with db.session() as session:
        total = registry.active_persons(session)
    with _progress() as progress:
        task = progress.add_task(_("Verifying persons"), total=total or 0)
        summary = verify_persons(
            db,
            on_progress=lambda n: progress.update(task, completed=n),
            only_unchecked=unchecked,
        )
    table = Table(title=_("Verification against the population register"), show_header=False)
    table.add_row(_("Checked"), f"{summary.checked:,}")
    table.add_row(_("Verified"), f"{summary.verified:,}")
    table.add_row(_("Mismatch"), f"{summary.mismatch:,}")
    table.add_row(_("Not found"), f"{summary.not_found:,}")
    console.print(table)


@registry_app.command("status")
def registry_status() -> None:
    """Tình trạng chỉ mục / persons, records, open reviews and the active model."""
    from sqlalchemy import func, select

    from ytehub.registry import service as registry
    from ytehub.registry.models import RegistrySource

    db = _database(_settings())
    with db.session() as session:
        persons = registry.active_persons(session)
        sources = session.scalar(select(func.count()).select_from(RegistrySource))
        reviews = registry.open_review_count(session)
        model = registry.active_model(session)
    table = Table(title=_("Client registry"), show_header=False)
    table.add_row(_("Persons"), f"{persons or 0:,}")
    table.add_row(_("Source records"), f"{sources or 0:,}")
    table.add_row(_("Open reviews"), f"{reviews or 0:,}")
    table.add_row(_("Model version"), f"{model.version} ({model.source})")
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
