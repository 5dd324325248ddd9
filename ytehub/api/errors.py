"""Error translation in one place: every failure leaves as problem details with both languages."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ytehub.api.context import request_language
from ytehub.core.errors import DomainError, Text
from ytehub.records.errors import FhirError, Issue, operation_outcome

PROBLEM = "application/problem+json"

_HTTP_TEXTS = {
    404: Text("Không tìm thấy địa chỉ này.", "No such address."),
    405: Text("Phương thức không được hỗ trợ.", "Method not allowed."),
}


FHIR_JSON = "application/fhir+json"
_ISSUE_TYPES = {
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    422: "invalid",
    429: "throttled",
}


def fhir_outcome_response(
    request: Request, status: int, issues: list[Issue], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        operation_outcome(issues, request_language(request)),
        status_code=status,
        headers=headers or None,
        media_type=FHIR_JSON,
    )


def _is_fhir(request: Request) -> bool:
    return request.url.path == "/fhir" or request.url.path.startswith("/fhir/")


def problem_response(request: Request, error: DomainError) -> JSONResponse:
    if _is_fhir(request):
        issue = Issue(
            "error", _ISSUE_TYPES.get(error.status, "processing"), error.message, error.field
        )
        return fhir_outcome_response(request, error.status, [issue], error.headers)
    return JSONResponse(
        error.as_problem(request_language(request)),
        status_code=error.status,
        headers=error.headers or None,
        media_type=PROBLEM,
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "query", "path", "header"))


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(FhirError)
    async def _fhir(request: Request, exc: FhirError) -> JSONResponse:
        return fhir_outcome_response(request, exc.status, exc.issues, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        where = _location(first.get("loc", ())) or "request"
        error = DomainError(
            "request.invalid",
            Text(
                f"Dữ liệu gửi lên không hợp lệ tại '{where}': {first.get('msg')}",
                f"Invalid request at '{where}': {first.get('msg')}",
            ),
            status=422,
            field=where,
        )
        if _is_fhir(request):
            return problem_response(request, error)
        problem = error.as_problem(request_language(request))
        problem["errors"] = [
            {"field": _location(e.get("loc", ())), "reason": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(problem, status_code=422, media_type=PROBLEM)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        text = _HTTP_TEXTS.get(exc.status_code, Text(str(exc.detail), str(exc.detail)))
        error = DomainError(f"http.{exc.status_code}", text, status=exc.status_code)
        return problem_response(request, error)
