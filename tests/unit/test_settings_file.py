"""The settings file: read forgivingly (env and keywords win), written back without loss."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from colabtray.settings import (
    Settings,
    environment_overrides,
    load_settings,
    save_settings,
    settings_path,
)
from colabtray.settings_file import SettingsFileError


def write(config_dir: Path, text: str) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_defaults_and_no_file_is_made(config_dir: Path) -> None:
    settings = load_settings()
    assert settings.idle_threshold == 3600
    assert settings.bridge_port == 0
    assert settings.notifications == "desktop"
    assert settings.file_problems == ()
    assert settings.settings_file_path == config_dir / "settings.toml"
    assert not config_dir.exists()


def test_the_file_is_used_the_environment_wins_over_it_and_keywords_win_over_both(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(config_dir, 'idle_threshold = 120\nbridge_port = 8765\nnotifications = "window"\n')
    settings = load_settings()
    assert (settings.idle_threshold, settings.bridge_port, settings.notifications) == (
        120,
        8765,
        "window",
    )
    monkeypatch.setenv("COLABTRAY_IDLE_THRESHOLD", "90")
    assert load_settings().idle_threshold == 90
    assert load_settings().bridge_port == 8765  # the rest of the file still counts
    assert load_settings(idle_threshold=30).idle_threshold == 30


def test_a_config_dir_given_as_keyword_is_where_the_file_is_read(
    config_dir: Path, tmp_path: Path
) -> None:
    write(config_dir, "poll_interval = 11\n")
    other = tmp_path / "other"
    write(other, "poll_interval = 22\n")
    assert load_settings().poll_interval == 11
    assert load_settings(config_dir=other).poll_interval == 22
    assert settings_path(other) == other / "settings.toml"


def test_settings_made_directly_read_no_file(config_dir: Path) -> None:
    write(config_dir, "poll_interval = 11\n")
    assert Settings().poll_interval == 60


def test_secrets_and_directories_in_the_file_are_refused_with_a_warning(
    config_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        config_dir,
        'client_id = "desktop-client"\n'
        'client_secret = "not-here"\n'
        'access_token = "nor-here"\n'
        'log_dir = "/somewhere/else"\n',
    )
    with caplog.at_level(logging.WARNING):
        settings = load_settings()
    assert settings.client_id == "desktop-client"  # not a secret
    assert settings.client_secret is None
    assert settings.access_token is None
    assert settings.log_dir != Path("/somewhere/else")
    problems = settings.file_problems
    assert len(problems) == 3
    assert problems[0].startswith(f"{path} line 2: client_secret is a secret")
    assert "COLABTRAY_CLIENT_SECRET" in problems[0]
    assert problems[1].startswith(f"{path} line 3: access_token is a secret")
    assert problems[2].startswith(f"{path} line 4: log_dir can only be set by")
    assert [r.getMessage() for r in caplog.records if r.name == "colabtray.settings"] == list(
        problems
    )
    assert not any(
        "not-here" in r.getMessage() or "nor-here" in r.getMessage() for r in caplog.records
    )


def test_a_malformed_file_is_reported_with_its_line_the_defaults_are_used_and_it_is_kept(
    config_dir: Path,
) -> None:
    text = "idle_threshold = 120\nkeepalive_interval = = 5\n"
    path = write(config_dir, text)
    before = path.stat()
    settings = load_settings()
    assert settings.idle_threshold == 3600  # nothing of the file is used
    (problem,) = settings.file_problems
    assert problem == (
        f"The settings file {path} is not valid TOML at line 2, column 22 (invalid value); "
        "colabtray uses the default settings and leaves the file as it is."
    )
    assert path.read_text() == text
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_an_unterminated_file_is_reported_at_its_end(config_dir: Path) -> None:
    write(config_dir, 'client_agent = "unterminated\n')
    (problem,) = load_settings().file_problems
    assert "is not valid TOML at line 1" in problem or "at its end" in problem


def test_an_invalid_or_unknown_value_costs_only_that_setting(config_dir: Path) -> None:
    path = write(
        config_dir,
        '# comment\nidle_threshold = -5\nnotifications = "smoke signals"\n'
        "poll_interval = 30\nidle_treshold = 10\n[keepalive]\ninterval = 3\n",
    )
    settings = load_settings()
    assert settings.idle_threshold == 3600
    assert settings.notifications == "desktop"
    assert settings.poll_interval == 30
    problems = settings.file_problems
    assert problems[0].startswith(f"{path} line 2: idle_threshold = -5 is invalid (")
    assert problems[0].endswith("the default is used.")
    assert problems[1].startswith(f"{path} line 3: notifications = 'smoke signals' is invalid")
    assert problems[2] == f"{path} line 5: 'idle_treshold' is no colabtray setting; ignored."
    assert problems[3] == f"{path} line 6: 'keepalive' is no colabtray table; ignored."


def test_an_unreadable_file_is_reported_and_the_defaults_are_used(config_dir: Path) -> None:
    (config_dir / "settings.toml").mkdir(parents=True)
    settings = load_settings()
    assert settings.idle_threshold == 3600
    (problem,) = settings.file_problems
    assert problem.startswith(f"Cannot read the settings file {config_dir / 'settings.toml'} (")


def test_an_invalid_environment_variable_still_raises(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLABTRAY_POLL_INTERVAL", "soon")
    with pytest.raises(ValidationError) as caught:
        load_settings()
    (error,) = caught.value.errors()
    assert error["loc"] == ("poll_interval",)
    assert error["input"] == "soon"
    assert error["msg"].startswith("Input should be a valid number")


def test_settings_made_directly_read_the_environment_and_keywords_win_over_it(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLABTRAY_POLL_INTERVAL", "15")
    monkeypatch.setenv("COLABTRAY_COLAB_URL", "http://127.0.0.1:8080/")
    settings = Settings()
    assert settings.poll_interval == 15
    assert settings.colab_url == "http://127.0.0.1:8080"  # validated like any other input
    assert settings.config_dir == config_dir
    assert Settings(poll_interval=5).poll_interval == 5


def test_environment_variable_names_are_read_in_any_case(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("colabtray_Idle_Threshold", "42")
    assert load_settings().idle_threshold == 42
    assert environment_overrides()["idle_threshold"] == "COLABTRAY_IDLE_THRESHOLD"


def test_a_list_setting_in_the_environment_is_json_and_wins_over_the_file(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(config_dir, 'scopes = ["openid"]\n')
    assert load_settings().scopes == ("openid",)
    monkeypatch.setenv("COLABTRAY_SCOPES", '["openid", "email"]')
    assert load_settings().scopes == ("openid", "email")
    assert load_settings(scopes=["profile"]).scopes == ("profile",)


def test_a_list_setting_that_is_not_json_raises_naming_the_setting(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLABTRAY_SCOPES", "openid,email")
    with pytest.raises(ValidationError) as caught:
        load_settings()
    (error,) = caught.value.errors()
    assert (error["loc"], error["type"]) == (("scopes",), "json_invalid")
    assert error["msg"].startswith("Invalid JSON: ")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "Path does not point to a file"),
        (b"not a certificate\n", "not a readable PEM file of certificates"),
    ],
)
def test_a_ca_file_that_cannot_serve_is_refused_by_name(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, expected: str
) -> None:
    ca_file = config_dir.parent / "company-ca.pem"
    if content is not None:
        ca_file.write_bytes(content)
    monkeypatch.setenv("COLABTRAY_CA_FILE", str(ca_file))
    with pytest.raises(ValidationError) as caught:
        load_settings()
    (error,) = caught.value.errors()
    assert error["loc"] == ("ca_file",) and error["msg"] == expected


def test_empty_secrets_and_client_id_in_the_environment_mean_unset(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(config_dir, 'client_id = "from-the-file"\n')
    for name in ("COLABTRAY_ACCESS_TOKEN", "COLABTRAY_CLIENT_ID", "COLABTRAY_CLIENT_SECRET"):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert (settings.access_token, settings.client_id, settings.client_secret) == (None,) * 3
    monkeypatch.setenv("COLABTRAY_CLIENT_SECRET", "s3cr3t")
    secret = load_settings().client_secret
    assert secret is not None and secret.get_secret_value() == "s3cr3t"


def test_nothing_is_read_at_import_time(config_dir: Path) -> None:
    write(config_dir, "this is = = not toml\n")
    result = subprocess.run(
        [sys.executable, "-c", "import colabtray.settings, colabtray.settings_file"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stderr == ""


# ---- writing ------------------------------------------------------------------------------


def test_saving_creates_the_file_and_loading_reads_it_back(config_dir: Path) -> None:
    changes = {"idle_threshold": 1200.0, "bridge_port": 8800, "notifications": "window"}
    path = save_settings({**changes, "scopes": ["openid", "email"]})
    assert path == config_dir / "settings.toml"
    text = path.read_text()
    assert text.startswith("# colabtray settings.")
    assert "idle_threshold = 1200\n" in text  # a whole number stays whole
    assert 'scopes = ["openid", "email"]' in text
    assert path.stat().st_mode & 0o777 == 0o600
    settings = load_settings()
    assert (settings.idle_threshold, settings.bridge_port, settings.notifications) == (
        1200,
        8800,
        "window",
    )
    assert settings.scopes == ("openid", "email")
    assert settings.file_problems == ()


def test_saving_keeps_comments_order_and_what_it_does_not_know(config_dir: Path) -> None:
    path = write(
        config_dir,
        "# my settings\n"
        "idle_threshold = 600  # ten minutes\n"
        "future_setting = true\n"
        "poll_interval = 30\n"
        "\n[from_a_newer_version]\nx = 1\n",
    )
    path.chmod(0o644)
    save_settings({"idle_threshold": 900, "poll_interval": None, "idle_extension": 60})
    assert path.read_text() == (
        "# my settings\n"
        "idle_threshold = 900  # ten minutes\n"
        "future_setting = true\n"
        "idle_extension = 60\n"
        "\n[from_a_newer_version]\nx = 1\n"
    )
    assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in config_dir.iterdir()) == ["settings.toml"]  # no temp files
    settings = load_settings()
    assert (settings.idle_threshold, settings.poll_interval, settings.idle_extension) == (
        900,
        60,
        60,
    )


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"client_secret": "s3cr3t-value"}, "client_secret is a secret"),
        ({"access_token": "s3cr3t-value"}, "access_token is a secret"),
        ({"config_dir": "/elsewhere"}, "config_dir can only be set by"),
        ({"no_such_setting": 1}, "'no_such_setting' is no colabtray setting"),
        ({"idle_threshold": 10, "bridge_port": 70000}, "bridge_port = 70000 is invalid"),
    ],
)
def test_saving_refuses_secrets_unknown_names_and_invalid_values(
    config_dir: Path, changes: dict[str, object], says: str
) -> None:
    path = write(config_dir, "idle_threshold = 600\n")
    with pytest.raises(SettingsFileError) as caught:
        save_settings(changes)
    assert says in caught.value.message
    assert "s3cr3t" not in caught.value.message
    assert path.read_text() == "idle_threshold = 600\n"


def test_saving_leaves_a_malformed_file_alone(config_dir: Path) -> None:
    text = "idle_threshold = = 600\n"
    path = write(config_dir, text)
    with pytest.raises(SettingsFileError) as caught:
        save_settings({"idle_threshold": 900})
    assert caught.value.message == (
        f"The settings file {path} is not valid TOML at line 1, column 18 (invalid value); "
        "fix or remove it before saving settings."
    )
    assert path.read_text() == text


def test_environment_overrides_names_the_variables_that_win(config_dir: Path) -> None:
    environ = {"COLABTRAY_IDLE_THRESHOLD": "5", "colabtray_bridge_port": "1", "HOME": "/root"}
    assert environment_overrides(environ) == {
        "idle_threshold": "COLABTRAY_IDLE_THRESHOLD",
        "bridge_port": "COLABTRAY_BRIDGE_PORT",
    }
    assert environment_overrides() == {"config_dir": "COLABTRAY_CONFIG_DIR"}


def test_the_readme_names_every_setting_in_its_table() -> None:
    """A person learns the settings from the README's table: each has a row there."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `COLABTRAY_")]
    missing = [
        name
        for name in Settings.model_fields
        if not any(f"`COLABTRAY_{name.upper()}`" in row for row in rows)
    ]
    assert missing == []
