"""One settings object for the whole platform.

Sources, strongest first: constructor arguments, ``YTEHUB_*`` environment variables, an
optional ``ytehub.toml`` (path in ``YTEHUB_CONFIG``, else the working directory), defaults.
The secret key is never in the repository: ``ytehub init`` writes it to the data directory.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ytehub.core.errors import DomainError, Text

SECRET_FILE = "secret.key"
Language = Literal["vi", "en"]


def _config_file() -> Path:
    return Path(os.environ.get("YTEHUB_CONFIG", "ytehub.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YTEHUB_", extra="ignore")

    data_dir: Path = Path("ytehub-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data directory"
    )
    secret_key: SecretStr | None = Field(
        default=None, description="JWT signing key; default: read from <data_dir>/secret.key"
    )
    default_language: Language = "vi"
    host: str = "127.0.0.1"
    port: int = 8000
    access_token_minutes: int = 15
    refresh_token_days: int = 14
    max_body_bytes: int = 10 * 1024 * 1024
    login_max_failures: int = 5
    login_window_minutes: int = 15
    login_lock_seconds: int = 30
    province_code: str = "79"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ytehub.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def signing_key(self) -> str:
        """The JWT key: configured, else the file written by ``ytehub init``."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / SECRET_FILE
        if path.exists():
            return path.read_text(encoding="ascii").strip()
        raise DomainError(
            "config.no_secret_key",
            Text(
                "Chưa có khóa bí mật: hãy chạy `ytehub init` hoặc đặt YTEHUB_SECRET_KEY.",
                "No secret key: run `ytehub init` or set YTEHUB_SECRET_KEY.",
            ),
            status=500,
        )

    def ensure_secret_key(self) -> bool:
        """Create ``<data_dir>/secret.key`` (mode 0600) when no key is configured; True if made."""
        if self.secret_key is not None or (self.data_dir / SECRET_FILE).exists():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / SECRET_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48))
        return True
