"""Payment providers: the interface the orders context pays through, and the sandbox gateway."""

from zhongtai.integrations.payments.provider import (
    PROVIDER_TENDERS,
    WALLET_TENDERS,
    NotificationKind,
    PaymentNotification,
    PaymentProvider,
    PaymentProviderUnavailable,
    PaymentRequest,
    PaymentStatus,
    ProviderResponse,
    RefundExceedsCaptured,
)
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway
from zhongtai.integrations.signed_callbacks import CallbackRejected

__all__ = [
    "PROVIDER_TENDERS",
    "WALLET_TENDERS",
    "CallbackRejected",
    "NotificationKind",
    "PaymentNotification",
    "PaymentProvider",
    "PaymentProviderUnavailable",
    "PaymentRequest",
    "PaymentStatus",
    "ProviderResponse",
    "RefundExceedsCaptured",
    "SandboxPaymentGateway",
]
