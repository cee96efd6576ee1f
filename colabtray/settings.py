"""Where colabtray talks to, with which OAuth client, and where it keeps its files.

Settings come from, first to last: keyword arguments of :func:`load_settings`, environment
variables named ``COLABTRAY_<FIELD>`` (for example ``COLABTRAY_COLAB_URL``; names in any case,
lists as JSON: ``COLABTRAY_SCOPES='["openid", "email"]'``), the settings file
``settings.toml`` in the config directory (see :mod:`colabtray.settings_file`), and the
defaults below. Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import json
import logging
import os
import types
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from colabtray import settings_file
from colabtray.system.dirs import app_dir, platform_dir, tighten_dir

log = logging.getLogger(__name__)


SCOPE_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
SCOPE_COLAB = "https://www.googleapis.com/auth/colaboratory"
# What Colab's /tun/m/* endpoints need (Google's own CLI found userinfo.email enough, and 401
# without it): few enough that a new user's own OAuth client in "Testing" mode gets consent
# without Google's verification. colaboratory is added only where a gapi setting needs it.
GOOGLE_SCOPES = ("openid", SCOPE_EMAIL)


class Settings(BaseModel):
    """The whole configuration of one colabtray process.

    ``Settings(...)`` reads the ``COLABTRAY_*`` environment variables itself (keyword arguments
    win over them), as it did when it was a pydantic-settings model; that package cost about
    4.5 MB of resident memory for this one job (see benchmarks/tray.py), so the reading is ours.
    """

    model_config = ConfigDict(extra="ignore", validate_default=True)

    # The Colab backend: the colab web host serves /tun/m/*, the GAPI host serves /v1/*.
    colab_url: str = "https://colab.research.google.com"
    gapi_url: str = "https://colab.pa.googleapis.com"
    # Which host lists assignments and refreshes runtime proxy tokens. Google's own CLI found
    # that only the colab host (/tun/m/assignments) accepts tokens of outside OAuth clients.
    listing_api: Literal["colab", "gapi"] = "colab"
    # Which host answers "what may this account have" and the compute-unit balance.
    account_api: Literal["colab", "gapi"] = "colab"
    # Which API lists, creates, renews and removes runtimes: Colab's public API (v1beta, on
    # Google's allowlist), the /tun/m calls, or "auto": the public API where it answers this
    # account, else /tun/m for the run.
    runtime_api: Literal["auto", "public", "tun"] = "auto"
    public_api_url: str = "https://colaboratory.googleapis.com"

    # Google sign-in.
    oauth_auth_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    oauth_token_url: str = "https://oauth2.googleapis.com/token"
    oauth_revoke_url: str = "https://oauth2.googleapis.com/revoke"
    userinfo_url: str = "https://www.googleapis.com/oauth2/v2/userinfo"
    # What a token holds (scopes, expiry, account): for `colabtray doctor`.
    tokeninfo_url: str = "https://oauth2.googleapis.com/tokeninfo"
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
    # long a runtime nothing has used yet is kept before it counts as idle (shorter: one made
    # in a browser tab since closed should not cost an hour), how long "Keep running" on the
    # idle prompt extends keep-alive, and how long the prompt waits.
    keepalive_interval: float = Field(default=300.0, gt=0)
    idle_threshold: float = Field(default=3600.0, gt=0)
    idle_grace: float = Field(default=900.0, gt=0)
    idle_extension: float = Field(default=1800.0, gt=0)
    idle_prompt_timeout: float = Field(default=60.0, gt=0)
    # How often the runtime list is polled (seconds).
    poll_interval: float = Field(default=60.0, gt=0)

    # Certificate authorities to trust besides the system's (a PEM file): for a network that
    # inspects TLS, and for the demo's HTTPS runtimes.
    ca_file: FilePath | None = None

    # Where `colabtray ssh-config` writes its Host entries (default ~/.ssh/colabtray_config).
    ssh_config: Path | None = None

    # The editor bridge's port for the first runtime (0: ports the OS picks).
    bridge_port: int = Field(default=0, ge=0, le=65535)
    # How the idle question is asked: a desktop notification with buttons (a small window
    # where the desktop has no notification service with buttons), or always the window.
    notifications: Literal["desktop", "window"] = "desktop"

    config_dir: Path = Field(default_factory=lambda: platform_dir("config"))
    state_dir: Path = Field(default_factory=lambda: platform_dir("state"))
    log_dir: Path = Field(default_factory=lambda: platform_dir("log"))

    # What was wrong with the settings file when these settings were loaded (sentences).
    _file_problems: tuple[str, ...] = PrivateAttr(default=())

    def __init__(self, **values: Any) -> None:
        """Keyword arguments, then the environment, then the settings file (only while
        :func:`load_settings` reads one), then the defaults."""
        from_file = _FILE_VALUES.get() or {}
        super().__init__(**{**from_file, **_environment_values(os.environ), **values})

    @property
    def oauth_scopes(self) -> tuple[str, ...]:
        """The scopes to ask Google for: ``scopes``, plus ``colaboratory`` when a setting
        sends calls to the GAPI host or to the public API (which refuse tokens without it)."""
        needs_colab = "gapi" in (self.listing_api, self.account_api) or (
            self.runtime_api == "public"
        )
        if needs_colab and SCOPE_COLAB not in self.scopes:
            return (*self.scopes, SCOPE_COLAB)
        return self.scopes

    @property
    def settings_file_path(self) -> Path:
        """Where this configuration's settings file is (it need not exist)."""
        return self.config_dir / settings_file.FILE_NAME

    @property
    def file_problems(self) -> tuple[str, ...]:
        """One sentence per problem the settings file had when loaded (also logged)."""
        return self._file_problems

    @field_validator("access_token", "client_id", "client_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("colab_url", "gapi_url", "public_api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("ca_file")
    @classmethod
    def _holds_certificates(cls, value: Path | None) -> Path | None:
        if value is not None:
            import ssl

            try:  # an empty context: cheap, unlike one that loads the system's store
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=value)
            except (ssl.SSLError, OSError):
                message = "not a readable PEM file of certificates"
                raise PydanticCustomError("ca_file", message) from None
        return value


# The values of the settings file that load_settings() is reading (a source, see above).
_FILE_VALUES: ContextVar[dict[str, Any] | None] = ContextVar("settings_file", default=None)


def _variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The raw ``COLABTRAY_<FIELD>`` values by field name; the variables' names in any case."""
    by_name = {name.lower(): value for name, value in environ.items()}
    return {
        field: by_name[f"colabtray_{field}"]
        for field in Settings.model_fields
        if f"colabtray_{field}" in by_name
    }


def _environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment sets: strings, which pydantic converts like any input,
    except JSON for container fields (``COLABTRAY_SCOPES='["openid", "email"]'``).

    Raises pydantic's ValidationError, naming the field, for JSON that does not parse.
    """
    values: dict[str, Any] = {}
    for field, raw in _variables(environ).items():
        if not _is_container(Settings.model_fields[field].annotation):
            values[field] = raw
            continue
        try:
            values[field] = json.loads(raw)
        except ValueError as exc:
            error = InitErrorDetails(
                type="json_invalid", loc=(field,), input=raw, ctx={"error": str(exc)}
            )
            raise ValidationError.from_exception_data(Settings.__name__, [error]) from None
    return values


def _is_container(annotation: Any) -> bool:
    """Whether a field holds a list, tuple, set, dict or model (also as part of a union)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_is_container(arg) for arg in get_args(annotation))
    kind = origin or annotation
    containers = (list, tuple, set, frozenset, dict, Mapping, BaseModel)
    return isinstance(kind, type) and issubclass(kind, containers)


def settings_path(config_dir: Path | str | None = None) -> Path:
    """The settings file of ``config_dir``, else of ``COLABTRAY_CONFIG_DIR``, else the
    platform's config directory."""
    if config_dir is None:
        config_dir = app_dir("config")
    return Path(config_dir) / settings_file.FILE_NAME


def load_settings(**overrides: object) -> Settings:
    """Read the settings: keyword arguments win over the environment, which wins over the
    settings file. A problem with the file is logged as a warning and kept in
    ``file_problems``; the parts of the file it concerns (or all of it) are not used.

    Raises pydantic's ValidationError for an invalid keyword argument or environment variable.
    """
    config_dir = overrides.get("config_dir")
    path = settings_path(config_dir if isinstance(config_dir, str | Path) else None)
    from_file = settings_file.read(path, Settings)
    for problem in from_file.problems:
        log.warning("%s", problem)
    token = _FILE_VALUES.set(from_file.values)
    try:
        settings = Settings(**overrides)
    finally:
        _FILE_VALUES.reset(token)
    settings._file_problems = from_file.problems
    for folder in (settings.config_dir, settings.state_dir, settings.log_dir):
        tighten_dir(folder)  # one of ours left open by an older colabtray, or by hand
    return settings


def save_settings(changes: Mapping[str, object], config_dir: Path | str | None = None) -> Path:
    """Write these settings into the settings file (None: back to the default) and return
    its path. Comments and settings not named are kept; the file is replaced atomically.

    Raises :class:`colabtray.settings_file.SettingsFileError` (with a sentence) for a secret,
    a directory, an unknown name, an invalid value, or an existing file that is not TOML.
    """
    path = settings_path(config_dir)
    settings_file.write_changes(path, changes, Settings)
    return path


def environment_overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Settings that an environment variable sets (field name → variable name): a value
    saved to the file for them has no effect while the variable is set."""
    variables = _variables(os.environ if environ is None else environ)
    return {field: f"COLABTRAY_{field.upper()}" for field in variables}
