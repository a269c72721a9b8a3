"""Fixtures of the store-work race tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zhongtai.integrations.payments.sandbox import SandboxPaymentGateway


@pytest.fixture
def gateway() -> Iterator[SandboxPaymentGateway]:
    """A sandbox gateway that keeps its notifications (a race test has no server to call)."""
    gateway = SandboxPaymentGateway("race-gateway", notify=False)
    yield gateway
    gateway.close()
