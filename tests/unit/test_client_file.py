"""The OAuth client file a user downloads from the Google Cloud console: what is accepted,
what gets a sentence saying what to create instead, and where colabtray keeps its copy."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from colabtray.auth.client_file import (
    FILE_NAME,
    ClientFileError,
    configured_client,
    install_client_file,
    read_client_file,
)
from colabtray.settings import load_settings
from tests.fixtures.credentials import client_secret

DESKTOP = {
    "installed": {
        "client_id": "123-abc.apps.googleusercontent.com",
        "project_id": "my-colab",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "client_secret": client_secret("in-a-desktop-file"),
        "redirect_uris": ["http://localhost"],
    }
}


def write(path: Path, content: object) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_a_desktop_client_file_is_read(tmp_path: Path) -> None:
    client = read_client_file(write(tmp_path / "client.json", DESKTOP))
    assert client.client_id == "123-abc.apps.googleusercontent.com"
    assert client.client_secret is not None
    assert client.token_uri == "https://oauth2.googleapis.com/token"
    assert "GOCSPX" not in repr(client)  # the secret never shows in a repr or a log line


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ({"web": DESKTOP["installed"]}, 'is a "Web application" client'),
        ("{not json", "not an OAuth client file (not JSON)"),
        ([1, 2], "not an OAuth client file"),
        ({"other": {}}, 'no "installed" section'),
        ({"installed": {"client_secret": "x"}}, "has no client_id"),
        ({"installed": {"client_id": "a"}}, "has no client_secret"),
        ({"installed": {"client_id": "", "client_secret": "x"}}, "has no client_id"),
        ("[" * 100000, "not JSON"),
    ],
)
def test_a_file_that_cannot_serve_gets_one_sentence_saying_what_to_make(
    tmp_path: Path, content: object, says: str
) -> None:
    path = write(tmp_path / "client.json", content)
    with pytest.raises(ClientFileError) as refused:
        read_client_file(path)
    assert says in refused.value.message
    assert "\n" not in refused.value.message
    if "has no" not in says:  # the rest say what to create instead
        assert 'type "Desktop app"' in refused.value.message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClientFileError, match="There is no file"):
        read_client_file(tmp_path / "nope.json")


def test_the_kept_copy_is_private_and_used_from_then_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLABTRAY_CLIENT_ID", raising=False)
    monkeypatch.delenv("COLABTRAY_CLIENT_SECRET", raising=False)
    config = tmp_path / "config"
    settings = load_settings(config_dir=config)
    assert configured_client(settings) is None
    installed = install_client_file(write(tmp_path / "download.json", DESKTOP), config)
    kept = config / FILE_NAME
    assert installed.origin == str(kept)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    found = configured_client(settings)
    assert found is not None and found.client_id == DESKTOP["installed"]["client_id"]


def test_the_environment_wins_over_the_kept_file(tmp_path: Path) -> None:
    config = tmp_path / "config"
    install_client_file(write(tmp_path / "download.json", DESKTOP), config)
    settings = load_settings(config_dir=config, client_id="env-client", client_secret="s")
    found = configured_client(settings)
    assert found is not None and found.client_id == "env-client"
    assert found.origin == "COLABTRAY_CLIENT_ID"


def test_a_broken_file_is_refused_before_it_replaces_a_good_one(tmp_path: Path) -> None:
    config = tmp_path / "config"
    install_client_file(write(tmp_path / "good.json", DESKTOP), config)
    with pytest.raises(ClientFileError):
        install_client_file(write(tmp_path / "web.json", {"web": {}}), config)
    assert read_client_file(config / FILE_NAME).client_id == DESKTOP["installed"]["client_id"]
