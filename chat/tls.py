"""Certificates: a self-signed one for LAN use (--self-signed DIR), and TLS server contexts.

The certificate names this machine (hostname, localhost, loopback and its interface addresses),
is kept in DIR for reuse, and is made again when it expires or the machine's addresses change.
People check it by its SHA-256 fingerprint, which the server prints at start-up.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import re
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Set, Tuple, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

CERT_NAME = "sealchat-cert.pem"
KEY_NAME = "sealchat-key.pem"
VALID_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=7)
_DNS_LABELS = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


@dataclass(frozen=True)
class Certificate:
    """Paths of a certificate and its key, and the fingerprint people compare on their devices."""

    certfile: str
    keyfile: str
    fingerprint: str
    names: Tuple[str, ...]
    created: bool


def _linux_ipv4() -> Set[IPAddress]:
    """Local IPv4 addresses from the kernel's routing table (no packet is sent)."""
    found: Set[IPAddress] = set()
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        return found
    last = None
    for line in lines:
        text = line.strip()
        if text.startswith("|--"):
            last = text[3:].strip()
        elif text == "/32 host LOCAL" and last:
            try:
                found.add(ipaddress.ip_address(last))
            except ValueError:
                pass
    return found


def _linux_ipv6() -> Set[IPAddress]:
    found: Set[IPAddress] = set()
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split()
        if parts and len(parts[0]) == 32:
            try:
                found.add(ipaddress.IPv6Address(int(parts[0], 16)))
            except ValueError:
                pass
    return found


def _resolver_addresses(hostname: str) -> Set[IPAddress]:
    """Fallback off Linux: what the system resolver knows for our own hostname."""
    found: Set[IPAddress] = set()
    try:
        infos = socket.getaddrinfo(hostname, None, 0, socket.SOCK_STREAM)
    except OSError:
        return found
    for info in infos:
        try:
            found.add(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            pass
    return found


def machine_addresses() -> List[IPAddress]:
    """This machine's own addresses, loopback included, discovered locally without any packet.

    IPv6 link-local addresses are left out: a URL cannot use them without a zone id.
    """
    found = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    if sys.platform.startswith("linux"):
        found |= _linux_ipv4() | _linux_ipv6()
    else:
        found |= _resolver_addresses(socket.gethostname())
    usable = {ip for ip in found
              if not (ip.is_unspecified or ip.is_multicast or (ip.version == 6 and ip.is_link_local))}
    return sorted(usable, key=lambda ip: (ip.version, int(ip)))


def machine_hostnames() -> List[str]:
    """localhost, the hostname and, for a bare hostname, its mDNS name (host.local)."""
    names = ["localhost"]
    host = socket.gethostname().strip().rstrip(".").lower()
    if host and _DNS_LABELS.match(host):
        names.append(host)
        if "." not in host:
            names.append(host + ".local")
    return list(dict.fromkeys(names))


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, as browsers show it: AB:CD:..."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def file_fingerprint(certfile: str) -> str:
    """The SHA-256 fingerprint of the first certificate in a PEM file."""
    return fingerprint(x509.load_pem_x509_certificate(Path(certfile).read_bytes()))


def _san_set(cert: x509.Certificate) -> Set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return ({f"DNS:{n.lower()}" for n in san.get_values_for_type(x509.DNSName)}
            | {f"IP:{ip}" for ip in san.get_values_for_type(x509.IPAddress)})


def _wanted(hostnames: Sequence[str], addresses: Sequence[IPAddress]) -> Set[str]:
    return {f"DNS:{h.lower()}" for h in hostnames} | {f"IP:{ip}" for ip in addresses}


def _usable(certfile: Path, keyfile: Path, wanted: Set[str], now: datetime.datetime) -> Optional[x509.Certificate]:
    """The stored certificate when it is still good for this machine, else None."""
    try:
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
        key = serialization.load_pem_private_key(keyfile.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE <= now or cert.not_valid_before_utc > now:
        return None
    if _san_set(cert) != wanted:
        return None
    return cert


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file created with its final mode, then rename over the old one."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _generate(hostnames: Sequence[str], addresses: Sequence[IPAddress],
              now: datetime.datetime, days: int) -> Tuple[x509.Certificate, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # RSA: old Android clients
    common = next((h for h in hostnames if h != "localhost"), "localhost")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common[:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sealchat self-signed")])
    sans: List[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    sans += [x509.IPAddress(ip) for ip in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert, key_pem


def ensure_self_signed(directory: str, hostnames: Optional[Iterable[str]] = None,
                       addresses: Optional[Iterable[IPAddress]] = None,
                       now: Optional[datetime.datetime] = None, days: int = VALID_DAYS) -> Certificate:
    """Reuse the certificate in `directory` if it still fits this machine, else make a new one.

    A new one is made when none is there, it is unreadable, expires within a week, or its names
    differ from this machine's current hostnames and addresses. The key file is mode 0600.
    """
    names = sorted({h.lower() for h in (machine_hostnames() if hostnames is None else hostnames)})
    ips = sorted(set(machine_addresses() if addresses is None else addresses), key=lambda ip: (ip.version, int(ip)))
    now = now or datetime.datetime.now(datetime.timezone.utc)
    folder = Path(directory)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    certfile, keyfile = folder / CERT_NAME, folder / KEY_NAME
    wanted = _wanted(names, ips)
    cert = _usable(certfile, keyfile, wanted, now)
    created = cert is None
    if cert is None:
        cert, key_pem = _generate(names, ips, now, days)
        _write(keyfile, key_pem, 0o600)
        _write(certfile, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    elif os.stat(keyfile).st_mode & 0o077:
        os.chmod(keyfile, 0o600)
    return Certificate(str(certfile), str(keyfile), fingerprint(cert), tuple(sorted(wanted)), created)


def server_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server-side TLS context: TLS 1.2 or newer, the library's default ciphers."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return ctx
