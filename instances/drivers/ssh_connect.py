"""Opening an SSH connection to a node: keys, host key pinning, login, and transport tuning.

Host keys are pinned (OpenSSH's `StrictHostKeyChecking=accept-new`): with no pinned key the first key
seen is reported through `on_new_host_key` and trusted from then on; a different key is refused with
`HostKeyMismatch` before authenticating, so nothing ever reaches an impostor.
"""

from __future__ import annotations

import base64
import hashlib
import io
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paramiko
from django.core.exceptions import ValidationError

from .errors import AuthenticationFailed, HostKeyMismatch, NodeUnreachable

# Throughput, measured on loopback with 2 cores (bench/bench_ssh.py, 200 MB, noisy ±20 %): every
# path is bound by paramiko's per-packet Python work, so fewer, cheaper packets win.
# - Cipher: AES-GCM does encryption and integrity in one AEAD call per packet; aes128-ctr +
#   hmac-sha2-256 (paramiko's first choice) reads at ~120-260 MB/s against ~300-420 with GCM.
#   OpenSSH offers GCM; we ask for it first and fall back to paramiko's defaults.
# - Max packet (what the node may send us per packet): 32 KiB reads at ~130-250 MB/s, 64-128 KiB
#   at ~300-400; 128 KiB stays well below OpenSSH's 256 KiB packet limit.
# - Window (data the node may send before we acknowledge): 2 MiB, paramiko's default, would cap a
#   50 ms WAN link near 40 MB/s; 16 MiB lifts that. It is also the most unread data one channel
#   can buffer, so memory stays bounded per stream.
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
WINDOW_SIZE = 16 * 1024 * 1024
MAX_PACKET_SIZE = 128 * 1024
KEEPALIVE_SECONDS = 30

NewHostKeyCallback = Callable[[str, str, str], None]
HostKey = tuple[str, str]  # (type, base64), as in known_hosts


def fingerprint(key_base64: str) -> str:
    """`SHA256:…` of a public key, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def load_client_key(*, pkey_text: str | None = None, key_path: str | None = None, node: str = "") -> paramiko.PKey:
    """The panel's private key for a node, from stored text (preferred) or a key file."""
    try:
        if pkey_text:
            return _key_from_text(pkey_text)
        if key_path:
            return paramiko.PKey.from_path(key_path)
    except (OSError, ValueError, paramiko.SSHException) as error:
        source = "stored private key" if pkey_text else f"private key file {key_path}"
        raise AuthenticationFailed(f"The {source} for node {node} cannot be used: {error}.", node=node) from None
    raise AuthenticationFailed(f"Node {node} has neither a stored private key nor a key file.", node=node)


def validate_private_key(value: str) -> None:
    """An unencrypted OpenSSH/PEM private key the SSH driver can load (empty: none). A form and model
    validator, kept beside the code that loads keys so that the two never disagree."""
    if not value.strip():
        return
    try:
        load_client_key(pkey_text=value)
    except AuthenticationFailed:
        raise ValidationError(
            "This is not an unencrypted OpenSSH/PEM private key (ed25519, ecdsa, rsa).", code="invalid_key"
        ) from None


def _key_from_text(text: str) -> paramiko.PKey:
    last: Exception | None = None
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError) as error:
            last = error
    raise ValueError(f"not an OpenSSH or PEM private key ({last})")


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to log in."""

    host: str
    port: int
    username: str
    key: paramiko.PKey
    connect_timeout: float = 10

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"

    def unreachable(self, reason: str) -> NodeUnreachable:
        return NodeUnreachable(f"Node {self.label} cannot be reached: {reason}.", node=self.label)


def open_transport(
    endpoint: Endpoint, *, pinned_host_key: HostKey | None, on_new_host_key: NewHostKeyCallback | None
) -> tuple[paramiko.Transport, HostKey]:
    """A logged-in connection, and the host key the node presented (now the pinned one)."""
    transport = paramiko.Transport(
        _open_socket(endpoint), default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET_SIZE
    )
    try:
        _configure(transport, endpoint, pinned_host_key)
        _negotiate(transport, endpoint)
        host_key = _check_host_key(transport.get_remote_server_key(), endpoint, pinned_host_key, on_new_host_key)
        _authenticate(transport, endpoint)
        transport.set_keepalive(KEEPALIVE_SECONDS)
        return transport, host_key
    except BaseException:
        transport.close()
        raise


def presented_host_key(endpoint: Endpoint) -> tuple[str, str, str]:
    """(type, base64, SHA256 fingerprint) of the host key the node presents now, from a handshake that
    stops before logging in: re-pinning looks at the key without sending the node anything of ours."""
    transport = paramiko.Transport(_open_socket(endpoint))
    try:
        _configure(transport, endpoint, None)
        _negotiate(transport, endpoint)
        key = transport.get_remote_server_key()
        return key.get_name(), key.get_base64(), key.fingerprint
    finally:
        transport.close()


def _open_socket(endpoint: Endpoint) -> socket.socket:
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=endpoint.connect_timeout)
    except socket.gaierror as error:
        raise endpoint.unreachable(f"the name {endpoint.host} could not be resolved ({error.strerror})") from None
    except ConnectionRefusedError:
        raise endpoint.unreachable(f"it refused the connection (is sshd listening on port {endpoint.port}?)") from None
    except TimeoutError:
        raise endpoint.unreachable(f"it did not answer within {endpoint.connect_timeout:g} s") from None
    except OSError as error:
        raise endpoint.unreachable(error.strerror or str(error)) from None
    # Without it, Nagle + delayed ACK add ~40 ms to every small request/reply exchange.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _prefer(available: Sequence[str], wanted: Sequence[str]) -> tuple[str, ...]:
    first = tuple(name for name in wanted if name in available)
    return first + tuple(name for name in available if name not in first)


def _host_key_algorithms(key_type: str) -> tuple[str, ...]:
    # An RSA key is stored as "ssh-rsa" but negotiated under its signature algorithms.
    return ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa") if key_type == "ssh-rsa" else (key_type,)


def _configure(transport: paramiko.Transport, endpoint: Endpoint, pinned_host_key: HostKey | None) -> None:
    transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = endpoint.connect_timeout
    options = transport.get_security_options()
    options.ciphers = _prefer(options.ciphers, FAST_CIPHERS)
    if pinned_host_key:
        # A node with several host keys must present the pinned one, not whichever we like best.
        options.key_types = _prefer(options.key_types, _host_key_algorithms(pinned_host_key[0]))


def _negotiate(transport: paramiko.Transport, endpoint: Endpoint) -> None:
    # Banner and key exchange each have connect_timeout (set in _configure); start_client returns
    # quietly when its own timeout passes, hence the check after it.
    limit = 2 * endpoint.connect_timeout
    try:
        transport.start_client(timeout=limit)
    except (paramiko.SSHException, EOFError, OSError) as error:
        raise endpoint.unreachable(f"no SSH session could be negotiated ({describe(error)})") from None
    if not (transport.is_active() and transport.initial_kex_done):
        raise endpoint.unreachable(f"no SSH session could be negotiated within {limit:g} s")


def _check_host_key(
    key: paramiko.PKey, endpoint: Endpoint, pinned: HostKey | None, on_new_host_key: NewHostKeyCallback | None
) -> HostKey:
    offered = (key.get_name(), key.get_base64())
    if pinned is None:
        if on_new_host_key is not None:
            on_new_host_key(offered[0], offered[1], key.fingerprint)  # may raise to refuse the key
        return offered
    if offered[1] != pinned[1]:
        raise HostKeyMismatch(
            node=endpoint.label,
            pinned_fingerprint=fingerprint(pinned[1]),
            offered_key=offered,
            offered_fingerprint=key.fingerprint,
        )
    return pinned


def _authenticate(transport: paramiko.Transport, endpoint: Endpoint) -> None:
    label, user = endpoint.label, endpoint.username
    try:
        transport.auth_publickey(user, endpoint.key)
    except paramiko.BadAuthenticationType as error:
        allowed = ", ".join(error.allowed_types) or "nothing"
        raise AuthenticationFailed(
            f"Node {label} does not accept key authentication for user {user} (it allows: {allowed}).", node=label
        ) from None
    except paramiko.AuthenticationException:
        raise AuthenticationFailed(
            f"Node {label} refused the panel's key {endpoint.key.fingerprint} for user {user}. Check the user "
            f"name and that the matching public key is in ~{user}/.ssh/authorized_keys on the node.",
            node=label,
        ) from None
    except (paramiko.SSHException, EOFError, OSError) as error:
        raise endpoint.unreachable(f"the connection broke during login ({describe(error)})") from None
    if not transport.is_authenticated():
        raise AuthenticationFailed(
            f"Node {label} wants more than a key for user {user} (e.g. a second factor); the panel logs in "
            "with a key only.",
            node=label,
        )
