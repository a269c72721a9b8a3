"""What can go wrong with WeCom: refused callbacks and failed API calls, each with a stable code."""

from __future__ import annotations

from typing import ClassVar


class WeComError(Exception):
    """Something went wrong between us and WeCom; ``code`` names the kind and never changes."""

    code: ClassVar[str] = "wecom-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class WeComCallbackError(WeComError):
    """A callback that must be refused: forged, replayed, garbled or not for us.

    The HTTP layer answers every one of these with an error and does not act on the callback;
    WeCom retries a callback it did not get a success for, so refusing is always safe.
    """

    code = "wecom-callback-invalid"


class WeComSignatureInvalid(WeComCallbackError):
    """``msg_signature`` does not match the token, timestamp, nonce and ciphertext."""

    code = "wecom-signature-invalid"


class WeComTimestampStale(WeComCallbackError):
    """The callback's timestamp is too far from now: an old callback played again, or bad clocks."""

    code = "wecom-timestamp-stale"


class WeComDecryptError(WeComCallbackError):
    """The ciphertext is not base64, not whole blocks, or its padding or length is wrong."""

    code = "wecom-decrypt-failed"


class WeComReceiverMismatch(WeComCallbackError):
    """The message decrypted, but it was sealed for another corp (or suite)."""

    code = "wecom-receiver-mismatch"


class WeComMessageInvalid(WeComCallbackError):
    """The XML is malformed, carries a DTD or entities, or lacks a field the event needs."""

    code = "wecom-message-invalid"


class WeComApiError(WeComError):
    """WeCom's API answered with a non-zero ``errcode``."""

    code = "wecom-api-error"

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeCom answered errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeComUnavailable(WeComError):
    """WeCom's API could not be reached in time or answered something that is not its JSON."""

    code = "wecom-unavailable"
