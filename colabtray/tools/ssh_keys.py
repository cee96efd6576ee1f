"""Which SSH key ``colabtray ssh`` uses, and its public half (what Colab is sent).

Colab's runtimes accept ed25519 and ECDSA keys and refuse every RSA key, so RSA is refused
here first, before anything goes over the network. Without ``-i``: ``~/.ssh/id_ed25519``,
then ``~/.ssh/id_ecdsa`` (as Colab's own CLI looks).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from colabtray.errors import UserError

ACCEPTED = frozenset(
    {"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}
)
DEFAULTS = ("id_ed25519", "id_ecdsa")
MAKE_ONE = "ssh-keygen -t ed25519"


class SshKeyError(UserError):
    """No usable key: one sentence saying why and what to do."""


@dataclass(frozen=True)
class Identity:
    private: Path
    public: str  # the OpenSSH public key line, as Colab takes it in X-Colab-Ssh-Pubkey


def identity(explicit: Path | None = None, home: Path | None = None) -> Identity:
    """The key named by ``-i``, else the first default one; SshKeyError with a sentence."""
    if explicit is not None:
        return _checked(explicit.expanduser())
    ssh_dir = (home or Path.home()) / ".ssh"
    for name in DEFAULTS:
        if (ssh_dir / name).is_file():
            return _checked(ssh_dir / name)
    rsa = (
        " (Colab refuses RSA keys, so ~/.ssh/id_rsa will not do)"
        if (ssh_dir / "id_rsa").is_file()
        else ""
    )
    raise SshKeyError(
        f"There is no SSH key for Colab in {ssh_dir} (id_ed25519 or id_ecdsa){rsa}; "
        f"make one with: {MAKE_ONE}"
    )


def _checked(private: Path) -> Identity:
    public = _public_line(private)
    kind = public.split(maxsplit=1)[0] if public.strip() else ""
    if kind == "ssh-rsa" or kind.startswith("rsa-"):
        raise SshKeyError(
            f"{private} is an RSA key, and Colab refuses RSA keys for SSH (it takes ed25519 "
            f"and ECDSA keys); make an ed25519 key with: {MAKE_ONE}"
        )
    if kind not in ACCEPTED:
        raise SshKeyError(
            f"{private} is a {kind or 'unknown'} key, and Colab takes only ed25519 and ECDSA "
            f"keys for SSH; make an ed25519 key with: {MAKE_ONE}"
        )
    return Identity(private, public.strip())


def _public_line(private: Path) -> str:
    """``PRIVATE.pub``'s line, else ``ssh-keygen -y -f PRIVATE``'s."""
    if not private.is_file():
        raise SshKeyError(f"There is no SSH key {private}; make one with: {MAKE_ONE} -f {private}")
    public = Path(f"{private}.pub")
    try:
        if public.is_file():
            return public.read_text(encoding="utf-8", errors="replace").strip().splitlines()[0]
    except (OSError, IndexError):
        pass
    try:
        done = subprocess.run(
            ["ssh-keygen", "-y", "-f", str(private)],
            capture_output=True,
            text=True,
            timeout=120,  # it may ask for the key's passphrase
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is None or done.returncode != 0 or not done.stdout.strip():
        raise SshKeyError(
            f"Could not read the public half of {private} (no {public.name} beside it, and "
            "ssh-keygen -y could not derive it)."
        )
    return done.stdout.strip().splitlines()[0]
