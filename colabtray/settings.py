"""Where colabtray talks to, with which OAuth client, and where it keeps its files.

Every field can be set by an environment variable named ``COLABTRAY_<FIELD>`` (for example
``COLABTRAY_COLAB_URL``). Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "colabtray"

GOOGLE_SCOPES = (
    "openid",
    "email",
    "profile",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/colaboratory",
)


class Settings(BaseSettings):
    """The whole configuration of one colabtray process."""

    model_config = SettingsConfigDict(env_prefix="COLABTRAY_", extra="ignore")

    # The Colab backend: the colab web host serves /tun/m/*, the GAPI host serves /v1/*.
    colab_url: str = "https://colab.research.google.com"
    gapi_url: str = "https://colab.pa.googleapis.com"
    # Which host lists assignments and refreshes runtime proxy tokens. Google's own CLI found
    # that only the colab host (/tun/m/assignments) accepts tokens of outside OAuth clients.
    listing_api: Literal["colab", "gapi"] = "colab"
    # Which host answers "what may this account have" and the compute-unit balance.
    account_api: Literal["colab", "gapi"] = "colab"

    # Google sign-in.
    oauth_auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    oauth_token_url: str = "https://oauth2.googleapis.com/token"
    oauth_revoke_url: str = "https://oauth2.googleapis.com/revoke"
    userinfo_url: str = "https://www.googleapis.com/oauth2/v2/userinfo"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: tuple[str, ...] = GOOGLE_SCOPES
    # How long the sign-in flow waits for the browser's redirect, in seconds.
    signin_timeout: float = Field(default=300.0, gt=0)
    # A ready bearer token that skips sign-in (scripts, tests, a token printed by gcloud).
    access_token: SecretStr | None = None

    # What colabtray says it is in X-Colab-Client-Agent (honest by default).
    client_agent: str = "colabtray"

    # Network behaviour of the backend client, in seconds.
    request_timeout: float = Field(default=20.0, gt=0)
    keepalive_timeout: float = Field(default=10.0, gt=0)
    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_initial_wait: float = Field(default=0.3, ge=0)
    retry_max_wait: float = Field(default=3.0, ge=0)

    # Keep-alive (seconds): how often to look, how long without activity counts as idle, how
    # long "Keep running" on the idle prompt extends keep-alive, and how long the prompt waits.
    keepalive_interval: float = Field(default=300.0, gt=0)
    idle_threshold: float = Field(default=3600.0, gt=0)
    idle_extension: float = Field(default=1800.0, gt=0)
    idle_prompt_timeout: float = Field(default=60.0, gt=0)
    # How often the runtime list is polled (seconds).
    poll_interval: float = Field(default=60.0, gt=0)

    config_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_config_dir(APP_NAME)))
    state_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_state_dir(APP_NAME)))
    log_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_log_dir(APP_NAME)))

    @field_validator("access_token", "client_id", "client_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("colab_url", "gapi_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment; keyword arguments win over it."""
    return Settings(**overrides)  # type: ignore[arg-type]
