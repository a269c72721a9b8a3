"""Money as integer fen (分) with an ISO 4217 currency code; never floats."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Money(BaseModel):
    """An amount in the currency's minor unit (fen for CNY)."""

    model_config = ConfigDict(frozen=True)

    amount: int = Field(description="Amount in minor units (fen, 分).", examples=[1299])
    currency: str = Field(default="CNY", min_length=3, max_length=3, examples=["CNY"])

    @classmethod
    def fen(cls, amount: int, currency: str = "CNY") -> Money:
        return cls(amount=amount, currency=currency)

    def display(self) -> str:
        sign = "-" if self.amount < 0 else ""
        whole, minor = divmod(abs(self.amount), 100)
        return f"{sign}{whole}.{minor:02d} {self.currency}"
