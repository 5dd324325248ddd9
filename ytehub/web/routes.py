"""The web console: sign-in, language switch, navigation shell and dashboard.

Handlers only parse input, call services and render; authorisation is the same token
check the API uses, read from the console's cookies.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ytehub import __version__
from ytehub.api.context import request_id, request_language, source_address
from ytehub.api.deps import get_database, get_settings
from ytehub.core.db import Database
from ytehub.core.errors import DomainError
from ytehub.core.i18n import LANGUAGES, N_, normalise, translator
from ytehub.core.security import Principal, get_role, service
from ytehub.core.settings import Settings
from ytehub.web import session as console

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(files("ytehub.web").joinpath("templates")))

# The modules of the platform, in the order of the navigation; `ready` ones have pages.
MODULES: list[dict[str, Any]] = [
    {"key": "dashboard", "title": N_("Dashboard"), "href": "/", "ready": True},
    {"key": "records", "title": N_("Health records"), "href": "/records", "ready": True},
    {"key": "registry", "title": N_("Client registry"), "href": "/registry", "ready": True},
    {"key": "immunization", "title": N_("Immunization"), "href": "/immunization", "ready": False},
    {
        "key": "surveillance",
        "title": N_("Disease surveillance"),
        "href": "/surveillance",
        "ready": False,
    },
    {"key": "dispatch", "title": N_("Emergency 115"), "href": "/dispatch", "ready": False},
    {"key": "care", "title": N_("Appointments and care"), "href": "/care", "ready": False},
    {"key": "analytics", "title": N_("Statistics"), "href": "/analytics", "ready": False},
    {"key": "admin", "title": N_("Administration"), "href": "/admin", "ready": False},
]


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the sign-in page cannot be used to redirect elsewhere."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = request_language(request)
    csrf = console.csrf_token(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "_": translator(lang),
            "lang": lang,
            "languages": LANGUAGES,
            "csrf": csrf,
            "version": __version__,
            "modules": MODULES,
            **context,
        },
        status_code=status,
    )
    console.set_csrf(request, response, csrf)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    username: str = Form(default=""),
    password: str = Form(default=""),
    csrf: str = Form(default=""),
    next: str = Form(default="/"),
    settings: Settings = Depends(get_settings),
    db: Database = Depends(get_database),
) -> Response:
    _ = translator(request_language(request))
    if not console.csrf_ok(request, csrf):
        return render(
            request,
            "login.html",
            400,
            next=_safe_next(next),
            username=username,
            error=_("Your sign-in form expired. Please try again."),
        )
    try:
        grant = service.password_sign_in(
            db,
            settings,
            username.strip(),
            password,
            source=source_address(request),
            request_id=request_id(request),
            channel="console",
        )
    except DomainError as error:
        status = 429 if error.status == 429 else 401
        return render(
            request,
            "login.html",
            status,
            next=_safe_next(next),
            username=username,
            error=error.message.in_language(request_language(request)),
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    console.store_grant(request, response, settings, grant)
    return response


@router.post("/logout")
def logout(
    request: Request,
    csrf: str = Form(default=""),
    db: Database = Depends(get_database),
) -> Response:
    response = RedirectResponse("/login", status_code=303)
    if not console.csrf_ok(request, csrf):
        return response
    refresh = request.cookies.get(console.REFRESH_COOKIE)
    if refresh:
        with db.session() as session:
            service.revoke_refresh_token(session, refresh)
    console.clear(response)
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str | None = None) -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie("lang", normalise(code), max_age=365 * 86400, samesite="lax", path="/")
    return response


def page(
    request: Request,
    settings: Settings,
    db: Database,
    name: str,
    build: Callable[[Principal], dict[str, Any]] | None = None,
    **context: Any,
) -> Response:
    """Render a console page for the signed-in user (or send them to sign in); ``build``
    computes the page's data with the user's own authority."""
    principal, renewed = console.signed_in(request, settings, db)
    if principal is None:
        target = quote(
            str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""), safe="/"
        )
        return RedirectResponse(f"/login?next={target}", status_code=303)
    if build is not None:
        context.update(build(principal))
    response = render(
        request, name, user=_user_view(principal, request_language(request)), **context
    )
    if renewed is not None:
        console.store_grant(request, response, settings, renewed)
    return response


def _user_view(principal: Principal, lang: str) -> dict[str, Any]:
    role = get_role(principal.role)
    return {
        "name": principal.subject,
        "role": role.label.in_language(lang),
        "area": principal.area.describe().in_language(lang),
        "scopes": [str(s) for s in principal.scopes],
    }


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request,
    settings: Settings = Depends(get_settings),
    db: Database = Depends(get_database),
) -> Response:
    return page(request, settings, db, "dashboard.html", active="dashboard")


def _placeholder(module: dict[str, Any]) -> Any:
    def placeholder(
        request: Request,
        settings: Settings = Depends(get_settings),
        db: Database = Depends(get_database),
    ) -> Response:
        return page(request, settings, db, "coming_soon.html", active=module["key"], module=module)

    return placeholder


for _module in MODULES:
    if not _module["ready"]:
        router.add_api_route(_module["href"], _placeholder(_module), response_class=HTMLResponse)
