"""The payment providers and courier services a running Zhongtai talks to, by name.

The built-in ones are the sandbox payment gateway and the simulated courier fleet, which call
back over real signed HTTP like third-party platforms do; real providers register under their
own names through the same interfaces.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from zhongtai.core.errors import NotFound
from zhongtai.core.settings import Settings
from zhongtai.integrations.couriers.provider import CourierService
from zhongtai.integrations.couriers.simulated import SimulatedCourierFleet
from zhongtai.integrations.payments.provider import PaymentProvider
from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway


def provider_secret(settings: Settings, purpose: str) -> str:
    """A callback-signing secret of its own for each built-in provider, from the secret key."""
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"zhongtai/providers/{purpose}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Providers:
    payments: Mapping[str, PaymentProvider] = field(default_factory=dict)
    couriers: Mapping[str, CourierService] = field(default_factory=dict)

    def payment(self, name: str) -> PaymentProvider:
        provider = self.payments.get(name)
        if provider is None:
            raise NotFound(f"No payment provider {name!r} is configured.")
        return provider

    def courier(self, name: str) -> CourierService:
        service = self.couriers.get(name)
        if service is None:
            raise NotFound(f"No courier service {name!r} is configured.")
        return service

    def close(self) -> None:
        for item in [*self.payments.values(), *self.couriers.values()]:
            close = getattr(item, "close", None)
            if close is not None:
                close()


def built_in_providers(settings: Settings) -> Providers:
    """The sandbox gateway and the simulated fleet, calling back over HTTP."""
    return Providers(
        payments={"sandbox": SandboxPaymentGateway(provider_secret(settings, "sandbox"))},
        couriers={
            "simulated": SimulatedCourierFleet(
                provider_secret(settings, "simulated"),
                time_scale=settings.sandbox_courier_time_scale,
            )
        },
    )
