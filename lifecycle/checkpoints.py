"""Signed checkpoints of the audit tree as C2SP signed notes (`tlog-checkpoint`), with Ed25519.

A checkpoint's note is three lines (origin, tree size, base64 root hash), a blank line, and one
signature line `— <name> <base64 of key id ‖ signature>`, signing the note's text (the three
lines, each ending in a newline). The key id is the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key) and
the verifier key reads `<name>+<hex key id>+<base64 of 0x01 ‖ public key>` (C2SP signed-note).
An auditor needs only the verifier key to check a note (`verify_note`)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = b"\x01"  # the signature type of C2SP signed notes
DASH = "\u2014"  # the em dash that starts a signature line


class NoteError(ValueError):
    """A note or a verifier key that is malformed, or whose signature does not verify."""


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root_hash).decode()}\n"


class Signer:
    def __init__(self, name: str, seed: bytes) -> None:
        self.name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(name, self.public_key)

    def verifier_key(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(ED25519 + self.public_key).decode()}"

    def sign(self, checkpoint: Checkpoint) -> str:
        body = checkpoint.body()
        signature = self._key.sign(body.encode())
        return f"{body}\n{DASH} {self.name} {base64.b64encode(self.key_id + signature).decode()}\n"


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)  # the base64 may hold "+", the name may not
        if len(parts) != 3:
            raise NoteError("a verifier key reads NAME+KEYID+KEY")
        name, hex_id, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
            wanted_id = bytes.fromhex(hex_id)
        except ValueError:
            raise NoteError("the verifier key's id or key is not hex and base64") from None
        if len(raw) != 33 or raw[:1] != ED25519 or len(wanted_id) != 4:
            raise NoteError("the verifier key is not an Ed25519 key of a signed note")
        if key_id(name, raw[1:]) != wanted_id:
            raise NoteError("the verifier key's id does not match its name and key")
        return cls(name, wanted_id, raw[1:])

    def verify_note(self, note: str) -> Checkpoint:
        """The checkpoint the note signs; NoteError unless this key signed it."""
        body, sep, signatures = note.partition("\n\n")
        if not sep or not body:
            raise NoteError("a signed note has its text, a blank line, then signature lines")
        body += "\n"
        verified = False
        for line in signatures.splitlines():
            if not line.startswith(f"{DASH} "):
                raise NoteError("a signature line starts with an em dash")
            try:
                name, encoded = line[2:].split(" ")
                blob = base64.b64decode(encoded, validate=True)
            except ValueError:
                raise NoteError("a signature line reads '— NAME BASE64'") from None
            if name != self.name or blob[:4] != self.key_id:
                continue  # another key's signature (a witness's): not ours to check
            try:
                Ed25519PublicKey.from_public_bytes(self.public_key).verify(blob[4:], body.encode())
            except InvalidSignature:
                raise NoteError(f"the signature of {name} does not verify: the note was altered") from None
            verified = True
        if not verified:
            raise NoteError(f"the note carries no signature of {self.name}")
        lines = body.split("\n")[:-1]
        if len(lines) < 3:
            raise NoteError("a checkpoint reads origin, tree size, root hash")
        origin, size_text, root_text = lines[:3]
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise NoteError("the checkpoint's tree size is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except ValueError:
            raise NoteError("the checkpoint's root hash is not base64") from None
        if len(root) != 32:
            raise NoteError("the checkpoint's root hash is not 32 bytes")
        return Checkpoint(origin, int(size_text), root)
