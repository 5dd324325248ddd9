"""Interface languages: Vietnamese first, English second.

Catalogs are gettext ``.po`` files under ``ytehub/locales`` (maintained with Babel's
``pybabel extract/update``); they are read with Babel at start-up, so no compiled ``.mo``
files live in the repository. Message ids are the English text.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.resources import files

from babel.messages.pofile import read_po

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
Translator = Callable[[str], str]


def normalise(lang: str | None) -> str:
    """A supported language code; anything unknown falls back to Vietnamese."""
    if not lang:
        return DEFAULT_LANGUAGE
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def from_accept_language(header: str | None) -> str | None:
    """The first supported language in an ``Accept-Language`` header, by quality."""
    if not header:
        return None
    ranked: list[tuple[float, str]] = []
    for part in header.split(","):
        piece = part.strip().split(";q=")
        try:
            quality = float(piece[1]) if len(piece) > 1 else 1.0
        except ValueError:
            quality = 0.0
        code = piece[0].strip().lower().split("-")[0]
        if code in LANGUAGES:
            ranked.append((quality, code))
    return max(ranked)[1] if ranked else None


@cache
def catalog(lang: str) -> dict[str, str]:
    path = files("ytehub").joinpath("locales", lang, "LC_MESSAGES", "messages.po")
    with path.open("rb") as handle:
        po = read_po(handle, locale=lang)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; translate it where it is shown."""
    return message


def translator(lang: str | None) -> Translator:
    table = catalog(normalise(lang))
    return lambda message: table.get(message, message)
