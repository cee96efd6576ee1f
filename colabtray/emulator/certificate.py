"""A throwaway certificate so the emulator's runtime proxies can speak HTTPS, as Colab's do.

With ``--tls`` the emulator makes one self-signed certificate for its loopback address at
start, writes it (public part only) to its temp dir and exports ``COLABTRAY_CA_FILE`` naming
it: a colabtray started with that environment trusts these runtimes besides what the system
trusts. The private key touches the disk only while it is loaded: an
owner-only file in the emulator's private temp dir, deleted at once.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

VALIDITY = datetime.timedelta(days=7)


def self_signed_context(host: str, directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for ``host`` (an IP address) and the certificate file to trust."""
    # cryptography is heavy and only needed here; the emulator imports this module on --tls.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "colabtray emulator runtimes")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    # A self-signed CA that is also the server's certificate: OpenSSL's strict checks (the
    # default from Python 3.13) want the CA flag, key usages and key identifiers present.
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "runtime-certificate.pem"
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_file.write_bytes(cert_pem)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # load_cert_chain reads files only; the key file lives for this call alone, owner-only.
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".pem") as key_file:
        key_file.write(key_pem)
        key_file.flush()
        context.load_cert_chain(cert_file, key_file.name)
    return context, cert_file
