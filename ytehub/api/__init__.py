"""HTTP API. ``ytehub.api:app`` is the ASGI application, built on first access from settings."""

from __future__ import annotations

from typing import Any

from ytehub.api.app import create_app

__all__ = ["app", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
