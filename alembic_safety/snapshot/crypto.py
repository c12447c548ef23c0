"""Optional encryption at rest of the files store's data files (``encryption_key_env``).

The key is 32 random bytes, base64-encoded (``openssl rand -base64 32``), held in the
environment variable that ``encryption_key_env`` names; it is never written anywhere.  The
cryptography comes from ``cryptography`` (pyca): ChaCha20-Poly1305 and HKDF-SHA256, put together
the way the age file format's payload is (age-encryption.org/v1, "STREAM"), so a file of any
size is encrypted and decrypted in bounded memory and every chunk is authenticated::

    file    = MAGIC (8 bytes) || salt (16 random bytes) || chunk_0 || ... || chunk_n
    key     = HKDF-SHA256(ikm = the 32-byte key, salt = salt, info = "alembic-safety data v1")
    chunk_i = ChaCha20-Poly1305(key).encrypt(nonce_i, plaintext_i, aad)
    nonce_i = i as 11 bytes big-endian || 0x01 for the last chunk, 0x00 for every other
    aad     = MAGIC || salt || "<backup id>/<file name>"

Every plaintext chunk but the last is exactly 64 KiB; the last holds 0..64 KiB, so an empty
file still has one (authenticated) chunk.  The counter and last-chunk flag in the nonce make
reordered, dropped, duplicated or truncated chunks fail authentication; the associated data
binds the file to its backup and name, so files cannot be swapped between backups or tables.
A fresh salt per file gives every file its own key, so nonces never repeat under one key.

What is encrypted is what the store would otherwise write: the zstd stream.  Checksums in the
manifest stay over the plaintext rows (the COPY/JSON-lines bytes), as without encryption: they
vouch for the data, whatever the storage; the AEAD tags vouch for the file.  The manifest records
``{"scheme", "key_env", "key_id"}`` — the key id is an HKDF-derived fingerprint (8 bytes) that
tells a wrong key from a damaged file without revealing anything about the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import BackupCorrupt, ConfigError, SafetyError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

SCHEME = "chacha20poly1305-stream-v1"
MAGIC = b"ASENC\x00\x01\n"
SALT = 16
CHUNK = 64 * 1024
TAG = 16
KEY_BYTES = 32
_LAST = b"\x01"
_MORE = b"\x00"
_COUNTER_MAX = (1 << 88) - 1


def _missing_library() -> SafetyError:
    return SafetyError("encryption needs the 'cryptography' package: pip install 'alembic-safety[encrypt]'")


def _hkdf(key: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as exc:  # pragma: no cover - the extra is part of the test install
        raise _missing_library() from exc
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def _aead(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    except ImportError as exc:  # pragma: no cover
        raise _missing_library() from exc
    return ChaCha20Poly1305(key)


def generate_key() -> str:
    """A new key, as the environment variable holds it."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_key(text: str, env: str) -> bytes:
    """The 32 key bytes from base64 (standard or URL-safe alphabet); anything else is a one-line
    error that names the variable, never its value."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"the environment variable {env} does not hold an encryption key (32 random bytes, "
                          "base64-encoded; create one with: openssl rand -base64 32)")  # fmt: skip
    return key


@dataclass(frozen=True)
class Cipher:
    """The key of one backup store, read from the environment variable ``env``."""

    env: str
    key: bytes

    def __repr__(self) -> str:  # never show the key, even by accident
        return f"Cipher(env={self.env!r}, key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        return _hkdf(self.key, None, b"alembic-safety key id v1", 8).hex()

    def describe(self) -> dict[str, str]:
        """What the manifest records: enough to find the key and recognise it, nothing more."""
        return {"scheme": SCHEME, "key_env": self.env, "key_id": self.key_id}

    def mac(self, text: str) -> str:
        """HMAC-SHA256 of ``text`` (a manifest) under a key derived for that purpose alone."""
        return hmac.new(self._mac_key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def verify_mac(self, text: str, tag: str) -> bool:
        return hmac.compare_digest(self.mac(text), tag)

    @property
    def _mac_key(self) -> bytes:
        return _hkdf(self.key, None, b"alembic-safety manifest mac v1", KEY_BYTES)

    def writer(self, target: BinaryIO, label: str) -> EncryptingWriter:
        return EncryptingWriter(target, self.key, label)

    def reader(self, source: BinaryIO, label: str) -> DecryptingReader:
        return DecryptingReader(source, self.key, label)


def cipher_from_env(env: str, environ: Mapping[str, str] | None = None) -> Cipher | None:
    """The cipher configured by ``encryption_key_env`` (None when the setting is empty)."""
    if not env:
        return None
    environ = os.environ if environ is None else environ
    value = environ.get(env)
    if not value:
        raise ConfigError(f"encryption_key_env names the environment variable {env}, which is not set; set it to "
                          "the backup key (create one with: openssl rand -base64 32)")  # fmt: skip
    return Cipher(env, parse_key(value, env))


def cipher_for_backup(
    backup_id: str, encryption: Mapping[str, Any], configured: Cipher | None, environ: Mapping[str, str] | None = None
) -> Cipher:
    """The key that opens an encrypted backup: the configured one, or the variable the manifest
    names.  A missing or wrong key is a one-line :class:`SafetyError` (exit 2)."""
    scheme = str(encryption.get("scheme", ""))
    if scheme != SCHEME:
        raise BackupCorrupt(f"backup {backup_id}: unknown encryption scheme {scheme!r}")
    env = str(encryption.get("key_env") or "")
    cipher = configured
    if cipher is None:
        environ = os.environ if environ is None else environ
        value = environ.get(env) if env else None
        if not value:
            raise SafetyError(f"backup {backup_id} is encrypted: set the environment variable {env or '(unnamed)'} "
                              "(or the one encryption_key_env names) to its key")  # fmt: skip
        cipher = Cipher(env, parse_key(value, env))
    if cipher.key_id != str(encryption.get("key_id", "")):
        raise SafetyError(f"backup {backup_id} was encrypted with another key (key id {encryption.get('key_id')}) "
                          f"than the one in {cipher.env} (key id {cipher.key_id}); set {cipher.env} to the key "
                          "the backup was taken with")  # fmt: skip
    return cipher


def _nonce(counter: int, last: bool) -> bytes:
    if counter > _COUNTER_MAX:
        raise SafetyError("encrypted file too large: chunk counter overflow")
    return counter.to_bytes(11, "big") + (_LAST if last else _MORE)


class EncryptingWriter(io.RawIOBase):
    """A write-only stream that encrypts into ``target`` chunk by chunk (at most 64 KiB held).
    :meth:`seal` writes the last chunk; :meth:`tell` counts the bytes written to ``target``."""

    def __init__(self, target: BinaryIO, key: bytes, label: str) -> None:
        super().__init__()
        self._target = target
        salt = secrets.token_bytes(SALT)
        header = MAGIC + salt
        self._aad = header + label.encode("utf-8")
        self._aead = _aead(_hkdf(key, salt, b"alembic-safety data v1", KEY_BYTES))
        self._buf = bytearray()
        self._counter = 0
        self._sealed = False
        self._written = 0
        self._emit(header)

    def _emit(self, data: bytes) -> None:
        self._target.write(data)
        self._written += len(data)

    def writable(self) -> bool:
        return True

    def write(self, b: ReadableBuffer) -> int:
        if self._sealed:
            raise ValueError("write to a sealed encrypted file")
        view = memoryview(b)
        self._buf += view
        while len(self._buf) > CHUNK:  # strictly more: the last chunk is never empty by accident
            self._emit(self._aead.encrypt(_nonce(self._counter, False), bytes(self._buf[:CHUNK]), self._aad))
            del self._buf[:CHUNK]
            self._counter += 1
        return view.nbytes

    def seal(self) -> None:
        """Write the last chunk (idempotent)."""
        if self._sealed:
            return
        self._emit(self._aead.encrypt(_nonce(self._counter, True), bytes(self._buf), self._aad))
        self._buf.clear()
        self._sealed = True
        self._target.flush()

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        if not self._target.closed:
            self._target.flush()

    def fileno(self) -> int:
        return self._target.fileno()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.seal()
            super().close()
        finally:
            self._target.close()


class DecryptingReader(io.RawIOBase):
    """A read-only stream of the plaintext of an encrypted file; any damage (a changed, missing,
    reordered or extra byte, another backup's file, a wrong key) raises :class:`BackupCorrupt`."""

    def __init__(self, source: BinaryIO, key: bytes, label: str) -> None:
        super().__init__()
        self._source = source
        header = self._read_exact(len(MAGIC) + SALT)
        if len(header) != len(MAGIC) + SALT or not header.startswith(MAGIC):
            raise BackupCorrupt(f"{label}: not an encrypted alembic-safety file")
        self._label = label
        self._aad = header + label.encode("utf-8")
        self._aead = _aead(_hkdf(key, header[len(MAGIC):], b"alembic-safety data v1", KEY_BYTES))
        self._pending = self._read_exact(CHUNK + TAG + 1)
        self._plain = b""
        self._pos = 0
        self._counter = 0
        self._done = False

    def _read_exact(self, n: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            data = self._source.read(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _next_chunk(self) -> None:
        from cryptography.exceptions import InvalidTag

        size = CHUNK + TAG
        last = len(self._pending) <= size
        sealed, rest = self._pending[:size], self._pending[size:]
        try:
            self._plain = self._aead.decrypt(_nonce(self._counter, last), sealed, self._aad)
        except InvalidTag as exc:
            raise BackupCorrupt(f"{self._label}: encrypted data failed authentication (chunk {self._counter}): the "
                                "file was changed, truncated or belongs to another backup") from exc  # fmt: skip
        self._pos = 0
        self._counter += 1
        if last:
            self._done = True
            self._pending = b""
        else:
            self._pending = rest + self._read_exact(size + 1 - len(rest))

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._pos >= len(self._plain):
            if self._done:
                return 0
            self._next_chunk()
        n = min(len(b), len(self._plain) - self._pos)
        b[:n] = memoryview(self._plain)[self._pos:self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


if __name__ == "__main__":  # python -m alembic_safety.snapshot.crypto: print a new key
    print(generate_key())
