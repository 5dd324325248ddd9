"""ASGI middleware: request ids, request-size limits and security headers, on every route."""

from __future__ import annotations

import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ytehub.core.errors import DomainError, Text


def _too_large(limit: int) -> DomainError:
    return DomainError(
        "request.too_large",
        Text(
            f"Dữ liệu gửi lên vượt quá giới hạn {limit} byte.",
            f"The request body exceeds the limit of {limit} bytes.",
        ),
        status=413,
    )


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        b" frame-ancestors 'none'; form-action 'self'",
    ),
]


class Edge:
    """What every HTTP request passes first, as one layer: a request id (the caller's
    ``X-Request-ID`` or a new one) echoed on every answer, bodies over ``limit`` bytes refused
    (by Content-Length up front, else while streaming), and the security headers.

    One layer rather than three: each layer wrapped ``send`` and read the headers again, a
    cost paid on every request. The answers are those the three layers gave: the 413 refusal
    carries the request id but not the security headers, which belong to the application's
    answers.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = incoming = None
        for name, value in scope["headers"]:  # the last of repeated headers counts
            if name == b"content-length":
                declared = value
            elif name == b"x-request-id":
                incoming = value
        rid = incoming.decode("latin-1") if incoming is not None else ""
        rid = rid[:64] if rid.isascii() and rid.strip() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode())
        limit = self.limit

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append(rid_header)
            await send(message)

        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send_with_id)
            return
        seen = 0
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Answer now and tell the application the client went away, so a body
                    # parser cannot turn this into another error.
                    if not started and not refused:
                        refused = True
                        await self._refuse(send_with_id)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
                headers = message.setdefault("headers", [])
                headers.extend(SECURITY_HEADERS)
                headers.append(rid_header)
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps(_too_large(self.limit).as_problem())
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
