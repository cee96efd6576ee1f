"""``settings.toml``: reading it forgivingly and writing changes back without losing anything.

The file is flat (``name = value`` per setting, the names of :class:`colabtray.settings.Settings`
fields). Reading never fails: a file that is not TOML is reported with its path and line and
ignored as a whole; a secret, a directory, an unknown name or an invalid value is reported
with its line and ignored on its own; the file itself is never rewritten by reading. Writing
(:func:`write_changes`) edits the document with tomlkit, so comments, order and names this
version does not know survive, and replaces the file atomically.

This module knows no particular settings: the caller passes the model whose fields are allowed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from colabtray.errors import UserError, describe_os_error
from colabtray.system.jsonfile import write_atomically

FILE_NAME = "settings.toml"

# Secrets belong in the keyring or the environment, never in a file.
SECRET_NAMES = frozenset({"access_token", "client_secret"})
# The directories decide where files (this one, the log) are read from: environment only.
ENVIRONMENT_ONLY = frozenset({"config_dir", "state_dir", "log_dir"})

HEADER = (
    "colabtray settings. Environment variables COLABTRAY_<NAME> override these.\n"
    "Secrets (tokens, the OAuth client secret) are never read from this file."
)


class SettingsFileError(UserError):
    """The file cannot be changed; ``message`` is one sentence for the user."""


@dataclass(frozen=True)
class FileValues:
    """What a settings file contributed: the usable values, and a sentence per problem."""

    path: Path
    values: dict[str, Any]
    problems: tuple[str, ...] = ()


def read(path: Path, model: type[BaseModel]) -> FileValues:
    """The usable values of the file at ``path`` (none if it does not exist); never raises."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return FileValues(path, {})
    except (OSError, UnicodeDecodeError) as exc:
        reason = describe_os_error(exc) if isinstance(exc, OSError) else "not text"
        return FileValues(
            path,
            {},
            (
                f"Cannot read the settings file {path} ({reason}); "
                "colabtray uses the default settings.",
            ),
        )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return FileValues(path, {}, (_syntax_problem(path, exc),))

    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in document.items():
        problem = _problem_with(name, value, model)
        if problem is None:
            values[name] = value
        else:
            problems.append(f"{path} line {_line_of(text, name)}: {problem}.")
    return FileValues(path, values, tuple(problems))


def write_changes(path: Path, changes: Mapping[str, Any], model: type[BaseModel]) -> None:
    """Set (or, for None, remove) these settings in the file at ``path``, atomically.

    Everything else in the file stays as it was, comments included. Raises
    :class:`SettingsFileError` for a name that may not be written or an invalid value (and
    writes nothing), and for an existing file that is not valid TOML (which is left alone).
    """
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            values[name] = None
            continue
        problem = _problem_with(name, value, model)
        if problem is not None:
            raise SettingsFileError(f"Cannot save {problem}.")
        adapter = _adapter(name, model)
        values[name] = _toml_value(adapter.dump_python(adapter.validate_python(value), mode="json"))

    # Only saving needs tomlkit (reading is tomllib): not loaded in a tray that never saves.
    import tomlkit
    import tomlkit.exceptions

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsFileError(f"Cannot read the settings file {path} ({exc}).") from exc
    if text is None:
        document = tomlkit.document()
        for line in HEADER.splitlines():
            document.add(tomlkit.comment(line))
    else:
        try:
            tomllib.loads(text)  # the same judge as reading, with its line numbers
            document = tomlkit.parse(text)
        except (tomllib.TOMLDecodeError, tomlkit.exceptions.ParseError) as exc:
            raise SettingsFileError(
                _syntax_problem(path, exc).replace(
                    "colabtray uses the default settings and leaves the file as it is",
                    "fix or remove it before saving settings",
                )
            ) from exc

    for name, value in values.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    _replace(path, tomlkit.dumps(document))


def _problem_with(name: str, value: Any, model: type[BaseModel]) -> str | None:
    """Why ``name = value`` cannot be a setting in the file, or None if it can."""
    if name in SECRET_NAMES:
        variable = f"COLABTRAY_{name.upper()}"
        return f"{name} is a secret and is never read from a file (use {variable})"
    if name in ENVIRONMENT_ONLY:
        return f"{name} can only be set by the environment variable COLABTRAY_{name.upper()}"
    if name not in model.model_fields:
        kind = "table" if isinstance(value, dict) else "setting"
        return f"{name!r} is no colabtray {kind}; ignored"
    try:
        _adapter(name, model).validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"{name} = {_show(value)} is invalid ({first['msg']}); the default is used"
    return None


def _adapter(name: str, model: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(model.model_fields[name].rebuild_annotation())


def _toml_value(value: Any) -> Any:
    """Whole numbers as integers (``3600``, not ``3600.0``): files are read by people."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


def _syntax_problem(path: Path, exc: Exception) -> str:
    message = str(exc)
    found = _POSITION.search(message)
    reason = _POSITION.sub("", message).strip() or "not TOML"
    if found and found.group(1):
        where = f"at line {found.group(1)}, column {found.group(2)}"
    elif found:
        where = "at its end"
    else:
        where = "somewhere"
    return (
        f"The settings file {path} is not valid TOML {where} ({reason[0].lower() + reason[1:]}); "
        "colabtray uses the default settings and leaves the file as it is."
    )


def _line_of(text: str, name: str) -> int | str:
    """The line where ``name`` is set at the top level (good enough for a flat file)."""
    pattern = re.compile(
        rf"^\s*(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')"
        rf"\s*=|^\s*\[\s*{re.escape(name)}\s*\]"
    )
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return "?"


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half;
    the file keeps its mode (0600 when new)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    write_atomically(path, text, mode)
