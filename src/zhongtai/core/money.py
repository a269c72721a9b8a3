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


def yuan(fen: int, *, whole_if_round: bool = False) -> str:
    """Fen as the customer reads yuan: ``¥12.50``, ``-¥3.00``; ``¥20`` for a round amount
    with ``whole_if_round`` (coupon faces: "¥20 off from ¥199")."""
    sign = "-" if fen < 0 else ""
    whole, minor = divmod(abs(fen), 100)
    if whole_if_round and minor == 0:
        return f"{sign}¥{whole}"
    return f"{sign}¥{whole}.{minor:02d}"
