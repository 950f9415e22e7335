"""The panel's key pair for a node: generated here when the operator asks, so nobody has to make one by hand.

The private half is stored encrypted on the node like a pasted key; the public half is derived from it
whenever the node's page shows it (the line to add to the node account's ~/.ssh/authorized_keys).
"""

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccp.errors import CCPError

from .drivers.ssh_connect import load_client_key


def key_pair_generate() -> str:
    """A new unencrypted ed25519 private key, in OpenSSH format."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        .decode()
    )


def node_public_key(node) -> str:
    """`ssh-ed25519 AAAA… ccp-panel@<node>` for the node's stored key ("" when it has none or it cannot load)."""
    if not node.has_private_key:
        return ""
    try:
        key = load_client_key(pkey_text=node.get_private_key(), node=node.name)
    except CCPError:
        return ""
    return f"{key.get_name()} {key.get_base64()} ccp-panel@{node.name}"
