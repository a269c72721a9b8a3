"""WeCom (企业微信): the callback protocol, its events, and the external-contact directory."""

from zhongtai.integrations.wecom.crypto import (
    DEFAULT_FRESHNESS_WINDOW,
    SealedCallback,
    WeComCrypto,
)
from zhongtai.integrations.wecom.directory import (
    DEFAULT_BASE_URL,
    ExternalContactDirectory,
    WeComDirectory,
)
from zhongtai.integrations.wecom.errors import (
    WeComApiError,
    WeComCallbackError,
    WeComDecryptError,
    WeComError,
    WeComMessageInvalid,
    WeComReceiverMismatch,
    WeComSignatureInvalid,
    WeComTimestampStale,
    WeComUnavailable,
)
from zhongtai.integrations.wecom.messages import (
    ExternalContactChange,
    ExternalContactChanged,
    UnhandledWeComEvent,
    WeComEvent,
    parse_event,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_FRESHNESS_WINDOW",
    "ExternalContactChange",
    "ExternalContactChanged",
    "ExternalContactDirectory",
    "SealedCallback",
    "UnhandledWeComEvent",
    "WeComApiError",
    "WeComCallbackError",
    "WeComCrypto",
    "WeComDecryptError",
    "WeComDirectory",
    "WeComError",
    "WeComEvent",
    "WeComMessageInvalid",
    "WeComReceiverMismatch",
    "WeComSignatureInvalid",
    "WeComTimestampStale",
    "WeComUnavailable",
    "parse_event",
]
