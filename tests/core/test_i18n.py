"""Every message the console and CLI show has a Vietnamese translation; fallbacks work."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

import ytehub
from ytehub.core.i18n import catalog, from_accept_language, normalise, translator

PACKAGE = Path(ytehub.__file__).parent
METHODS = [("**.py", "python"), ("web/templates/**.html", "jinja2")]


def _used_messages() -> set[str]:
    found = extract_from_dir(str(PACKAGE), METHODS, keywords={"_": None, "N_": None})
    return {message for _file, _line, message, _comments, _context in found}


def test_every_message_is_translated() -> None:
    used = _used_messages()
    assert len(used) > 40
    vi, en = catalog("vi"), catalog("en")
    assert not sorted(used - vi.keys()), "messages without a Vietnamese translation"
    assert not sorted(used - en.keys()), "messages missing from the English catalog"
    assert all(vi[m] for m in used)


def test_translations_and_fallback() -> None:
    assert translator("vi")("Sign in") == "Đăng nhập"
    assert translator("en")("Sign in") == "Sign in"
    assert translator("de")("Sign in") == "Đăng nhập"
    assert translator(None)("Not in any catalog") == "Not in any catalog"


def test_language_negotiation() -> None:
    assert normalise("EN-us") == "en" and normalise("fr") == "vi" and normalise(None) == "vi"
    assert from_accept_language("fr-FR, en;q=0.8, vi;q=0.9") == "vi"
    assert from_accept_language("en;q=bogus, vi;q=0.1") == "vi"
    assert from_accept_language("de") is None
