"""The pieces of ``colabtray ssh`` that need no runtime: host names, the known-hosts pruning
(plain and hashed names), the Include line, the key choice, and the emulator's key check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shlex
import subprocess
import types
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from colabtray.emulator.ssh import checked_key
from colabtray.errors import UserError
from colabtray.settings import load_settings
from colabtray.tools import ssh_hosts
from colabtray.tools.ssh_keys import SshKeyError, identity


def hashed(name: str) -> str:
    """``name`` as OpenSSH writes it with ``HashKnownHosts yes``."""
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_host_names_are_the_runtime_names_as_hosts_and_unique() -> None:
    assert ssh_hosts.slug("T4 GPU (1)") == "t4-gpu-1"
    assert ssh_hosts.host_names([("T4 GPU", "gpu-a"), ("t4-gpu", "gpu-b"), ("CPU", "m-c")]) == {
        "gpu-a": "colab-t4-gpu",
        "gpu-b": "colab-t4-gpu-gpu-b",
        "m-c": "colab-cpu",
    }


def test_known_hosts_keep_only_listed_runtimes(tmp_path: Path) -> None:
    known = tmp_path / "ssh_known_hosts"
    kept = [
        "colab-m-s-live ssh-ed25519 AAAAlive\n",
        f"{hashed('colab-m-s-live2')} ssh-ed25519 AAAAlive2\n",
        "# a comment stays\n",
    ]
    dropped = [
        "colab-m-s-gone ssh-ed25519 AAAAgone\n",
        f"{hashed('colab-m-s-gone2')} ssh-ed25519 AAAAgone2\n",
    ]
    known.write_text("".join(kept[:1] + dropped[:1] + kept[1:2] + dropped[1:] + kept[2:]))
    ssh_hosts.prune_known_hosts(known, ["m-s-live", "m-s-live2"])
    assert known.read_text() == "".join(kept)
    ssh_hosts.prune_known_hosts(tmp_path / "missing", [])  # nothing to prune: no error


def test_the_config_entries_and_the_include_line(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "state 1", ssh_config=tmp_path / "cfg")
    key = tmp_path / "id_ed25519"
    text = ssh_hosts.config_text(settings, [("T4 GPU", "gpu-t4-s-1")], key)
    assert text.startswith(ssh_hosts.MARK)
    assert "Host colab-t4-gpu\n" in text
    assert "  HostKeyAlias colab-gpu-t4-s-1\n" in text
    assert "  User root\n" in text
    assert "  StrictHostKeyChecking accept-new\n" in text
    assert f'  UserKnownHostsFile "{tmp_path}/state 1/ssh_known_hosts"\n' in text
    assert f'  IdentityFile "{key}"\n' in text
    assert f"ssh-proxy gpu-t4-s-1 -i {key}\n" in text

    written = ssh_hosts.write_config(settings, [("T4 GPU", "gpu-t4-s-1")], key)
    assert ssh_hosts.written_here(written, settings)
    other = load_settings(state_dir=tmp_path / "a test's app", ssh_config=written)
    assert not ssh_hosts.written_here(written, other)  # its app leaves this file alone

    user_config = tmp_path / "ssh" / "config"
    user_config.parent.mkdir()
    user_config.write_text("Host *\n  ServerAliveInterval 30\n")
    assert ssh_hosts.add_include(settings.ssh_config, user_config)
    assert not ssh_hosts.add_include(settings.ssh_config, user_config)  # once
    assert user_config.read_text() == (
        f'Include "{tmp_path}/cfg"\n\nHost *\n  ServerAliveInterval 30\n'
    )
    assert ssh_hosts.included(settings.ssh_config, user_config)


def keygen(path: Path, kind: str) -> Path:
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def test_the_key_choice(tmp_path: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    with pytest.raises(SshKeyError, match=r"There is no SSH key for Colab .* ssh-keygen -t ed"):
        identity(home=tmp_path)
    keygen(ssh_dir / "id_rsa", "rsa")
    with pytest.raises(SshKeyError, match=r"Colab refuses RSA keys, so ~/\.ssh/id_rsa will not"):
        identity(home=tmp_path)
    with pytest.raises(SshKeyError, match="is an RSA key, and Colab refuses RSA keys"):
        identity(ssh_dir / "id_rsa")
    ecdsa = keygen(ssh_dir / "id_ecdsa", "ecdsa")
    assert identity(home=tmp_path).private == ecdsa
    ed = keygen(ssh_dir / "id_ed25519", "ed25519")
    (ssh_dir / "id_ed25519.pub").unlink()  # derived with ssh-keygen -y
    chosen = identity(home=tmp_path)
    assert chosen.private == ed and chosen.public.startswith("ssh-ed25519 ")


def test_the_emulator_takes_only_well_formed_ed25519_and_ecdsa_keys(tmp_path: Path) -> None:
    ed = keygen(tmp_path / "ed", "ed25519")
    line = Path(f"{ed}.pub").read_text()
    kind, blob = line.split()[:2]
    assert checked_key(line) == (kind, blob)
    assert checked_key(None) == "missing pubkey"
    assert checked_key("  ") == "missing pubkey"
    assert checked_key(f"ssh-rsa {blob}") == "unsupported key type"
    assert checked_key(f"ecdsa-sha2-nistp256 {blob}") == "malformed pubkey"  # type mismatch
    assert checked_key("ssh-ed25519 AAAA\nssh-ed25519 BBBB") == "malformed pubkey"


async def test_an_emulator_not_running_as_root_answers_502_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from aiohttp.test_utils import make_mocked_request

    from colabtray.emulator import ssh as emulator_ssh

    monkeypatch.setattr(emulator_ssh.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(emulator_ssh, "find_sshd", lambda: "/usr/sbin/sshd")
    runtime = types.SimpleNamespace(endpoint="m-s-1", root_dir=tmp_path)
    door = emulator_ssh.RuntimeSsh(runtime, enabled=True)  # type: ignore[arg-type]
    public = keygen_public(tmp_path / "key")
    request = make_mocked_request("GET", "/colab/ssh", headers={"X-Colab-Ssh-Pubkey": public})
    answer = await door.handle(request)
    assert answer.status == 502
    assert "SSH needs the emulator to run as root" in caplog.text

    monkeypatch.setattr(emulator_ssh, "find_sshd", lambda: None)
    door = emulator_ssh.RuntimeSsh(runtime, enabled=True)  # type: ignore[arg-type]
    assert (await door.handle(request)).status == 502
    assert "apt-get install openssh-server" in caplog.text
    off = emulator_ssh.RuntimeSsh(runtime, enabled=False)  # type: ignore[arg-type]
    assert (await off.handle(request)).status == 404


def keygen_public(path: Path) -> str:
    return Path(f"{keygen(path, 'ed25519')}.pub").read_text().strip()


OPTION_WORDS = {"HostName"} | {key for key, _ in ssh_hosts.ssh_options(load_settings(), "e", None)}
OPTION_WORDS |= {"IdentityFile", "IdentitiesOnly"}


@example(names=["T4 GPU\nHost *\n  ProxyCommand sh -c evil"], key="id")
@example(names=["CPU"], key="\\")  # a backslash before the closing quote (found in CI)
@example(names=["CPU"], key="it's \\' %d \"x\"")
@example(names=["CPU\r\x85\u2028Match all"], key='id"\nProxyCommand evil')
@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(st.text(), min_size=1, max_size=3),
    key=st.text(alphabet=" \\'\"%$`~#=ab", min_size=1) | st.text(min_size=1),
)
def test_no_runtime_name_or_key_path_adds_a_line_to_sshs_config(
    tmp_path_factory: pytest.TempPathFactory, names: list[str], key: str
) -> None:
    """Names come from the names file and the backend's text, the key path from the user: the
    config file has the Host entries colabtray means and nothing else, as OpenSSH reads it
    (``ssh -G``), or a sentence says why it cannot be written."""
    folder = tmp_path_factory.mktemp("cfg")
    settings_ = load_settings(state_dir=folder / "state", ssh_config=folder / "cfg")
    runtimes = [(name, f"m-s-{index}") for index, name in enumerate(names)]
    identity = folder / key.replace("\0", "").replace("/", "")
    try:
        text = ssh_hosts.config_text(settings_, runtimes, identity)
    except UserError as refused:
        assert "ssh's config cannot" in refused.message
        return
    lines = [line.strip() for line in text.splitlines()]
    words = [line.split()[0] for line in lines if line and not line.startswith("#")]
    assert words.count("Host") == len(runtimes)
    assert set(words) - {"Host"} <= OPTION_WORDS
    config = folder / "cfg"
    config.write_text(text)
    hosts = ssh_hosts.host_names(runtimes)
    for _, endpoint in runtimes:
        seen = subprocess.run(
            ["ssh", "-G", "-F", str(config), hosts[endpoint]],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        said = dict(line.split(" ", 1) for line in seen.splitlines() if " " in line)
        # What sh will run (ssh -G shows it before "%%" becomes "%"):
        command = shlex.split(said["proxycommand"].replace("%%", "%"))
        assert command == ssh_hosts.proxy_command(endpoint, identity)
        # ssh -G shows paths before token expansion, which reads "%%" as "%".
        assert said["identityfile"] == str(identity).replace("%", "%%")
        known = str(ssh_hosts.known_hosts_file(settings_)).replace("%", "%%")
        assert said["userknownhostsfile"] == known


def test_the_include_goes_where_a_linked_ssh_config_points(tmp_path: Path) -> None:
    """A ~/.ssh/config kept in a dotfiles folder stays a link; the line lands in its target."""
    dotfiles = tmp_path / "dotfiles" / "ssh_config"
    dotfiles.parent.mkdir()
    dotfiles.write_text("Host *\n  ServerAliveInterval 30\n")
    link = tmp_path / "ssh" / "config"
    link.parent.mkdir()
    link.symlink_to(dotfiles)
    ours = tmp_path / "ssh" / "colabtray_config"
    assert ssh_hosts.add_include(ours, link)
    assert link.is_symlink()
    assert dotfiles.read_text().startswith(f'Include "{ours}"\n\nHost *')
    assert not ssh_hosts.add_include(ours, link)


def test_a_config_that_cannot_be_written_is_a_sentence_naming_it(tmp_path: Path) -> None:
    """The config and the Include line go through one write; what fails names the file (the
    CLI prints it, the tray shows it) instead of an OSError about a temporary file."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()  # a folder where the file should be: refused even to root
    settings_ = load_settings(state_dir=tmp_path / "state", ssh_config=blocked)
    with pytest.raises(UserError, match=rf"^colabtray could not write {blocked} \(.+\); check"):
        ssh_hosts.write_config(settings_, [("CPU", "m-s-a")], None)
    assert blocked.is_dir() and not any(blocked.iterdir())
