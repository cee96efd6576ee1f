"""Where ``ssh`` finds runtimes: colabtray's own known-hosts file and the ``Host`` entries
``colabtray ssh-config`` writes.

Every runtime is a new machine with a new host key. So colabtray keeps the keys in a
known-hosts file of its own (in its state dir), each under the alias ``colab-<endpoint>``
(``HostKeyAlias``): a runtime's key is recorded on first use (``StrictHostKeyChecking
accept-new``) and dropped once the runtime is no longer listed, and a new runtime never meets
an old runtime's key. ``ssh`` never asks about a key and never warns that one changed.

The config file holds one ``Host colab-<name>`` entry per runtime (``colab-t4-gpu``), and is
rewritten as runtimes come and go: by the running app (:func:`follow`), and by every
``colabtray ssh`` and ``ssh-config``. The app rewrites only a file ``ssh-config`` made.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import re
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from colabtray.colab.models import is_one_line, one_line
from colabtray.errors import UserError, describe_os_error
from colabtray.settings import Settings
from colabtray.system.jsonfile import write_atomically

if TYPE_CHECKING:
    from colabtray.core.app import Core
    from colabtray.core.registry import Event

log = logging.getLogger(__name__)

KNOWN_HOSTS = "ssh_known_hosts"
MARK = "# Written by colabtray ssh-config"
IDENTITY_MARK = "# colabtray-identity: "
STATE_MARK = "# colabtray-state: "  # whose file it is: another configuration's is left alone
ALIAS_PREFIX = "colab-"


def slug(name: str) -> str:
    """``T4 GPU`` → ``t4-gpu``: a runtime's name as a host name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "runtime"


def key_alias(endpoint: str) -> str:
    """The name a runtime's host key is kept under (one per runtime, never reused)."""
    return f"{ALIAS_PREFIX}{slug(endpoint)}"


def known_hosts_file(settings: Settings) -> Path:
    return settings.state_dir / KNOWN_HOSTS


def config_file(settings: Settings, *, demo: bool = False) -> Path:
    """Where ``ssh-config`` writes (``ssh_config`` setting, else ``~/.ssh/colabtray_config``;
    the demo's beside it, so the demo's runtimes never mix with the account's)."""
    if settings.ssh_config is not None:
        return settings.ssh_config.expanduser()
    return Path.home() / ".ssh" / ("colabtray_demo_config" if demo else "colabtray_config")


def prune_known_hosts(path: Path, endpoints: Iterable[str]) -> None:
    """Drop the keys of runtimes not in ``endpoints`` (every line colabtray did not write
    stays, as does anything it cannot read)."""
    keep_aliases = {key_alias(e) for e in endpoints}
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return
    kept = [line for line in lines if _keeps(line, keep_aliases)]
    if kept != lines:
        write_atomically(path, "".join(kept))


def _keeps(line: str, aliases: set[str]) -> bool:
    """Whether a known-hosts line is of a listed runtime (the file is colabtray's own: every
    key in it is a runtime's). Names may be hashed (``|1|salt|hash``: ``HashKnownHosts``)."""
    hosts = line.split(maxsplit=1)[0] if line.strip() else ""
    if not hosts or hosts.startswith("#"):
        return True
    return any(_names(name, aliases) for name in hosts.split(","))


def _names(name: str, aliases: set[str]) -> bool:
    if not name.startswith("|1|"):
        return name in aliases
    try:
        salt, digest = (base64.b64decode(part) for part in name[3:].split("|", 1))
    except (ValueError, binascii.Error):
        return True  # not ours to judge
    return any(
        hmac.compare_digest(hmac.new(salt, alias.encode(), hashlib.sha1).digest(), digest)
        for alias in aliases
    )


def proxy_command(endpoint: str, identity: Path | None, *, demo: bool = False) -> list[str]:
    """This colabtray's ``ssh-proxy`` for a runtime, as an argument list."""
    this = os.path.abspath(sys.executable)  # (not resolved: a venv's python is a link)
    command = [this] if getattr(sys, "frozen", False) else [this, "-m", "colabtray"]
    command += [*(["--demo"] if demo else []), "ssh-proxy"]
    command.append(endpoint)
    if identity is not None:
        command += ["-i", str(identity)]
    return command


def ssh_options(
    settings: Settings, endpoint: str, identity: Path | None, *, demo: bool = False
) -> list[tuple[str, str]]:
    """The ``ssh`` options that reach a runtime (for ``-o`` and for a ``Host`` entry)."""
    options = [
        ("HostKeyAlias", key_alias(endpoint)),
        ("User", "root"),
        ("ProxyCommand", _percent(_shell_line(proxy_command(endpoint, identity, demo=demo)))),
        ("UserKnownHostsFile", _quoted(_percent(str(known_hosts_file(settings))))),
        ("StrictHostKeyChecking", "accept-new"),
        ("UpdateHostKeys", "no"),
        ("HashKnownHosts", "no"),
        ("CheckHostIP", "no"),
        ("LogLevel", "ERROR"),  # not "Permanently added …" for each new runtime
    ]
    if identity is not None:
        options += [("IdentityFile", _quoted(_percent(str(identity)))), ("IdentitiesOnly", "yes")]
    return options


def _shell_line(words: list[str]) -> str:
    """``words`` as a command line for sh that OpenSSH's own splitting of the config line
    also accepts: it reads a backslash before a quote as an escape even inside single quotes,
    so backslashes and single quotes go in double quotes, everything else in single ones."""
    return " ".join(_shell_word(word) for word in words)


def _shell_word(word: str) -> str:
    if re.fullmatch(r"[\w@%+=:,./-]+", word, re.ASCII):
        return word
    quoted = {"\\": '"\\\\"', "'": '"\'"'}
    parts = (quoted.get(part, f"'{part}'") for part in re.split(r"([\\'])", word) if part)
    return "".join(parts) or "''"


def _percent(text: str) -> str:
    """``%`` is ssh_config's token character."""
    return text.replace("%", "%%")


def _quoted(text: str) -> str:
    """A path as one ssh_config argument: in double quotes, with ``\\``, ``"`` and ``'``
    escaped as OpenSSH's argument splitter reads them."""
    escaped = re.sub(r"([\\\"'])", r"\\\1", text)
    return f'"{escaped}"'


def _one_config_line(line: str) -> str:
    """``line``, checked to be one line: nothing in it may start another ssh_config line."""
    if not is_one_line(line):
        raise UserError(f"ssh's config cannot hold a line break or control character: {line!r}")
    return line


def config_text(
    settings: Settings,
    runtimes: Iterable[tuple[str, str]],
    identity: Path | None,
    *,
    demo: bool = False,
) -> str:
    """The whole config file for ``runtimes`` (name, endpoint)."""
    lines = [
        f"{MARK}; rewritten as runtimes come and go, so edit ~/.ssh/config instead.",
        "# Every Colab runtime is a new machine with a new host key: colabtray records each",
        "# runtime's key on first use in its own known-hosts file (UserKnownHostsFile below)",
        "# and forgets it when the runtime goes, so ssh never asks about a changed key.",
    ]
    lines.append(f"{STATE_MARK}{settings.state_dir}")
    if identity is not None:
        lines.append(f"{IDENTITY_MARK}{identity}")
    runtimes = list(runtimes)
    hosts = host_names(runtimes)
    for name, endpoint in runtimes:
        host = hosts[endpoint]
        # The name may come from an edited names file; the endpoint is an id (colab.models).
        lines += ["", f"# {one_line(name)} ({endpoint})", f"Host {host}", f"  HostName {host}"]
        lines += [
            f"  {key} {value}"
            for key, value in ssh_options(settings, endpoint, identity, demo=demo)
        ]
    return "\n".join(_one_config_line(line) for line in lines) + "\n"


def host_name(name: str) -> str:
    return f"{ALIAS_PREFIX}{slug(name)}"


def host_names(runtimes: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each runtime's ``Host`` (by endpoint): ``colab-<name>``, made unique if two names
    give the same one."""
    hosts: dict[str, str] = {}
    for name, endpoint in runtimes:
        host = host_name(name)
        if host in hosts.values():
            host = f"{host}-{slug(endpoint)}"
        hosts[endpoint] = host
    return hosts


def written_identity(path: Path) -> Path | None:
    """The key a config file ``ssh-config`` wrote names (None if none, or not ours)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.startswith(IDENTITY_MARK):
            return Path(line.removeprefix(IDENTITY_MARK))
    return None


def is_ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as source:
            return source.readline().startswith(MARK)
    except (OSError, UnicodeDecodeError):
        return False


def written_here(path: Path, settings: Settings) -> bool:
    """Whether ``ssh-config`` wrote ``path`` for this configuration of colabtray (the file
    follows the runtimes only then: not, say, for a test's or another account's app)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    return (
        bool(lines) and lines[0].startswith(MARK) and f"{STATE_MARK}{settings.state_dir}" in lines
    )


def write_config(
    settings: Settings,
    runtimes: list[tuple[str, str]],
    identity: Path | None,
    *,
    demo: bool = False,
) -> Path:
    """Write the config file (whole, atomically) and prune the known hosts; its path."""
    path = config_file(settings, demo=demo)
    _write(path, config_text(settings, runtimes, identity, demo=demo))
    prune_known_hosts(known_hosts_file(settings), [endpoint for _, endpoint in runtimes])
    return path


def included(path: Path, user_config: Path | None = None) -> bool:
    """Whether ``~/.ssh/config`` includes ``path``: as ``ssh-config`` writes the line, or as a
    person would (unquoted, ``~/``, relative to ``~/.ssh``)."""
    user_config = user_config or Path.home() / ".ssh" / "config"
    try:
        lines = user_config.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    wanted = path.expanduser().resolve()
    return any(wanted in _included_paths(line, user_config.parent) for line in lines)


def _included_paths(line: str, folder: Path) -> list[Path]:
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # an unclosed quote: ssh would refuse the line too
        return []
    if not words or words[0].lower() != "include":
        return []
    return [(folder / Path(word).expanduser()).resolve() for word in words[1:]]


def command_to_copy(
    settings: Settings, runtimes: list[tuple[str, str]], endpoint: str, *, demo: bool = False
) -> str:
    """What the tray's "Copy SSH command" copies: ``ssh colab-NAME`` where ``~/.ssh/config``
    includes colabtray's file (written first, so the entry is there), else ``colabtray ssh``."""
    names = {e: n for n, e in runtimes}
    path = config_file(settings, demo=demo)
    if included(path):
        identity = written_identity(path) if is_ours(path) else None
        if identity is None:
            from colabtray.tools.ssh_keys import identity as default_identity

            with contextlib.suppress(UserError):
                identity = default_identity().private
        write_config(settings, runtimes, identity, demo=demo)
        return f"ssh {host_names(runtimes)[endpoint]}"
    words = ["colabtray", *(["--demo"] if demo else []), "ssh", names.get(endpoint, endpoint)]
    return shlex.join(words)


def include_line(path: Path) -> str:
    return f"Include {_quoted(str(path))}"


def add_include(path: Path, user_config: Path | None = None) -> bool:
    """Put ``Include PATH`` at the top of ``~/.ssh/config`` (Include must come before any
    Host block to apply to all); False if it is there already."""
    user_config = user_config or Path.home() / ".ssh" / "config"
    if included(path, user_config):
        return False
    line = _one_config_line(include_line(path))
    target = user_config.resolve()  # a dotfiles link stays a link: write where it points
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    _write(target, f"{line}\n\n{text}" if text else f"{line}\n")
    return True


def _write(path: Path, text: str) -> None:
    """``text`` into ``path`` (its folder made private if new); a failure is a sentence that
    names the file, for the CLI and the tray alike."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(path, text)
    except OSError as exc:
        raise UserError(
            f"colabtray could not write {path} ({describe_os_error(exc)}); "
            "check that its folder is yours and writable."
        ) from None


# ---- following the running app's runtimes -------------------------------------------------


def follow(core: Core, *, demo: bool = False) -> None:
    """In the running app: rewrite the config file ``ssh-config`` made (if there is one) and
    prune the known hosts whenever the listed runtimes change (any registry event: the first
    listing announces no runtime as added). The files are written in a worker thread (they
    are synced to disk, and the loop is the tray's), newest list last."""
    settings = core.settings
    last: list[tuple[str, str]] | None = None
    newest: list[tuple[str, str]] | None = None  # not written yet
    writing: asyncio.Task[None] | None = None

    def update(runtimes: list[tuple[str, str]]) -> None:
        path = config_file(settings, demo=demo)
        try:
            if written_here(path, settings):
                write_config(settings, runtimes, written_identity(path), demo=demo)
            else:
                prune_known_hosts(known_hosts_file(settings), [e for _, e in runtimes])
        except (OSError, UserError) as exc:
            log.warning("could not update %s: %s", path, exc)

    async def write_newest() -> None:
        nonlocal newest
        while newest is not None:
            runtimes, newest = newest, None
            await asyncio.to_thread(update, runtimes)

    def changed(_event: Event) -> None:
        nonlocal last, newest, writing
        if not core.fleet.state.loaded:
            return
        runtimes = [(name, rt.endpoint) for name, rt in core.fleet.runtimes()]
        if runtimes == last:
            return
        last = newest = runtimes
        if writing is None or writing.done():
            writing = core.spawn(write_newest())

    core.fleet.subscribe(changed)
