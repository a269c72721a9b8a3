"""The WeCom callback protocol (WXBizMsgCrypt): signatures, AES envelopes, freshness, replay keys.

As WeCom publishes it ("加解密方案说明"):

- ``msg_signature`` = SHA-1 hex of the concatenation of ``[token, timestamp, nonce, msg_encrypt]``
  sorted lexicographically;
- AESKey = base64_decode(EncodingAESKey + "="), 32 bytes; AES-256-CBC with IV = AESKey[:16];
- the plaintext is random(16 bytes) + msg_len (4 bytes, network order) + msg + receiveid (the corp
  id, or the suite id), PKCS#7-padded to a multiple of 32 bytes (not AES's 16);
- URL verification is a GET with ``msg_signature``, ``timestamp``, ``nonce`` and ``echostr``: the
  signature covers ``echostr`` and the answer is its plaintext;
- an event is a POST of ``<xml><ToUserName/><AgentID/><Encrypt/></xml>`` with the same query
  parameters: the signature covers ``Encrypt``, whose plaintext is the event's XML;
- a passive reply is ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>``.

On top of the protocol, a callback whose timestamp is more than a window (300 s) from now is
refused. Remembering which callbacks were already seen is the caller's (a unique key in a table,
see ``WeComCrypto.replay_key``): this module does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from zhongtai.integrations.wecom.errors import (
    WeComDecryptError,
    WeComMessageInvalid,
    WeComReceiverMismatch,
    WeComSignatureInvalid,
    WeComTimestampStale,
)
from zhongtai.integrations.wecom.messages import read_xml, top_level_fields

#: WeCom pads to a multiple of 32 bytes; its own SDKs refuse nothing else.
PADDING_BLOCK = 32
RANDOM_PREFIX_BYTES = 16
DEFAULT_FRESHNESS_WINDOW = timedelta(seconds=300)

_ENCODING_AES_KEY = re.compile(r"^[A-Za-z0-9+/]{43}$")
_WHOLE_SECONDS = re.compile(r"^[0-9]{1,11}$")  # up to year 5138; datetime ends at 9999
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class SealedCallback:
    """A callback as WeCom sends it: the query parameters and the POST body."""

    msg_signature: str
    timestamp: str
    nonce: str
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        return {
            "msg_signature": self.msg_signature,
            "timestamp": self.timestamp,
            "nonce": self.nonce,
        }


class WeComCrypto:
    """One callback endpoint's keys: the token, the EncodingAESKey and the receiver id.

    ``receive_id`` is the corp id for an app of the corp itself (the suite id for a third-party
    suite); a message sealed for any other receiver is refused.
    """

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        freshness_window: timedelta = DEFAULT_FRESHNESS_WINDOW,
    ) -> None:
        if not token:
            raise ValueError("the WeCom token must not be empty")
        if not receive_id:
            raise ValueError("the WeCom receive id (corp id) must not be empty")
        if not _ENCODING_AES_KEY.match(encoding_aes_key):
            raise ValueError("the WeCom EncodingAESKey must be 43 base64 characters")
        if freshness_window <= timedelta(0):
            raise ValueError("the freshness window must be positive")
        self._token = token
        self._key = base64.b64decode(encoding_aes_key + "=")
        self._receive_id = receive_id.encode()
        self.receive_id = receive_id
        self.freshness_window = freshness_window

    # -- receiving -------------------------------------------------------------------------------

    def verify_url(
        self, msg_signature: str, timestamp: str, nonce: str, echostr: str, now: datetime
    ) -> str:
        """Check WeCom's URL verification request and return the plaintext to answer with.

        ``echostr`` is the query parameter after URL decoding (``+`` and ``/`` appear in it).
        """
        self._check_signature(msg_signature, timestamp, nonce, echostr)
        self.check_freshness(timestamp, now)
        return self.decrypt(echostr)

    def open_callback(
        self, msg_signature: str, timestamp: str, nonce: str, body_xml: bytes, now: datetime
    ) -> str:
        """Check an event callback (the POST body and its query) and return the event's XML."""
        encrypted = top_level_fields(read_xml(body_xml)).get("Encrypt")
        if not encrypted:
            raise WeComMessageInvalid("the callback body has no Encrypt element")
        self._check_signature(msg_signature, timestamp, nonce, encrypted)
        self.check_freshness(timestamp, now)
        return self.decrypt(encrypted)

    def check_freshness(self, timestamp: str, now: datetime) -> datetime:
        """The moment a callback was sent; refused when further than the window from ``now``."""
        if now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime")
        if not _WHOLE_SECONDS.match(timestamp):
            raise WeComMessageInvalid(f"timestamp {timestamp!r} is not whole Unix seconds")
        sent_at = datetime.fromtimestamp(int(timestamp), UTC)
        skew = abs(now - sent_at)
        if skew > self.freshness_window:
            raise WeComTimestampStale(
                f"the callback was sent at {sent_at.isoformat()}, {int(skew.total_seconds())} s "
                f"from now; at most {int(self.freshness_window.total_seconds())} s are accepted"
            )
        return sent_at

    @staticmethod
    def replay_key(timestamp: str, nonce: str, msg_signature: str) -> str:
        """A stable 64-character key naming one callback, for a unique column of seen callbacks.

        The parts are encoded unambiguously (no separator can make two callbacks collide) and
        hashed, so the key has a fixed length whatever WeCom puts in the nonce.
        """
        encoded = json.dumps([timestamp, nonce, msg_signature], ensure_ascii=True)
        return hashlib.sha256(encoded.encode()).hexdigest()

    def decrypt(self, encrypted: str) -> str:
        """The message inside a ``msg_encrypt`` (or ``echostr``) sealed for this receiver.

        Call it only on a ciphertext whose signature was checked: the signature is what keeps
        an attacker from using the padding and length checks below as an oracle.
        """
        try:
            ciphertext = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WeComDecryptError("the ciphertext is not base64") from exc
        if not ciphertext or len(ciphertext) % PADDING_BLOCK:
            raise WeComDecryptError("the ciphertext is not a whole number of 32-byte blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= PADDING_BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise WeComDecryptError("the plaintext padding is not PKCS#7 over 32-byte blocks")
        content = padded[RANDOM_PREFIX_BYTES:-pad]
        if len(content) < _LENGTH.size:
            raise WeComDecryptError("the plaintext is too short to hold a message length")
        (length,) = _LENGTH.unpack_from(content)
        message = content[_LENGTH.size : _LENGTH.size + length]
        if len(message) != length:
            raise WeComDecryptError("the message length is longer than the plaintext")
        receive_id = content[_LENGTH.size + length :]
        if receive_id != self._receive_id:
            raise WeComReceiverMismatch("the message was sealed for another receiver")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WeComDecryptError("the message is not UTF-8") from exc

    # -- sending ---------------------------------------------------------------------------------

    @staticmethod
    def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
        """``msg_signature``: SHA-1 hex of the four values sorted and concatenated."""
        joined = "".join(sorted([token, timestamp, nonce, encrypted]))
        # SHA-1 is what WeCom signs with; the secret token is what makes it unforgeable.
        return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324

    def encrypt(self, plaintext: str, *, random_prefix: bytes | None = None) -> str:
        """Seal a message for this receiver; ``random_prefix`` (16 bytes) only for fixed vectors."""
        prefix = (
            random_prefix if random_prefix is not None else secrets.token_bytes(RANDOM_PREFIX_BYTES)
        )
        if len(prefix) != RANDOM_PREFIX_BYTES:
            raise ValueError(f"the random prefix must be {RANDOM_PREFIX_BYTES} bytes")
        message = plaintext.encode("utf-8")
        content = prefix + _LENGTH.pack(len(message)) + message + self._receive_id
        pad = PADDING_BLOCK - len(content) % PADDING_BLOCK
        encryptor = self._cipher().encryptor()
        sealed = encryptor.update(content + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(sealed).decode("ascii")

    def seal(self, plaintext: str, nonce: str, timestamp: int | str) -> tuple[str, str]:
        """``(msg_encrypt, msg_signature)`` of a message sent at ``timestamp`` with ``nonce``."""
        encrypted = self.encrypt(plaintext)
        return encrypted, self.signature(self._token, _whole_seconds(timestamp), nonce, encrypted)

    def signed_body(self, plaintext: str, nonce: str, timestamp: int | str) -> bytes:
        """A passive reply: the sealed message with its signature, timestamp and nonce."""
        encrypted, msg_signature = self.seal(plaintext, nonce, timestamp)
        return (
            f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt>"
            f"<MsgSignature>{_cdata(msg_signature)}</MsgSignature>"
            f"<TimeStamp>{_whole_seconds(timestamp)}</TimeStamp>"
            f"<Nonce>{_cdata(nonce)}</Nonce></xml>"
        ).encode()

    def sealed_callback(
        self, plaintext: str, nonce: str, timestamp: int | str, *, agent_id: str | None = None
    ) -> SealedCallback:
        """An event callback as WeCom would POST it (for simulators and tests)."""
        encrypted, msg_signature = self.seal(plaintext, nonce, timestamp)
        agent = "" if agent_id is None else f"<AgentID>{_cdata(agent_id)}</AgentID>"
        body = (
            f"<xml><ToUserName>{_cdata(self.receive_id)}</ToUserName>{agent}"
            f"<Encrypt>{_cdata(encrypted)}</Encrypt></xml>"
        ).encode()
        return SealedCallback(msg_signature, _whole_seconds(timestamp), nonce, body)

    # -- internals -------------------------------------------------------------------------------

    def _check_signature(
        self, msg_signature: str, timestamp: str, nonce: str, encrypted: str
    ) -> None:
        expected = self.signature(self._token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), msg_signature.encode("utf-8")):
            raise WeComSignatureInvalid("msg_signature does not match the callback")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))


def _cdata(value: str) -> str:
    if "]]>" in value:
        raise ValueError(f"{value!r} cannot be put in a CDATA section")
    return f"<![CDATA[{value}]]>"


def _whole_seconds(timestamp: int | str) -> str:
    text = str(timestamp)
    if not _WHOLE_SECONDS.match(text):
        raise ValueError(f"timestamp {timestamp!r} is not whole Unix seconds")
    return text
