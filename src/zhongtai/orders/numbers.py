"""Order numbers people can read out on the phone: the day and eight random characters."""

from __future__ import annotations

import secrets
from datetime import datetime

#: Crockford's base-32 alphabet: no I, L, O or U to misread.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def next_order_number(now: datetime) -> str:
    """``20261126-7K2M9QXD``: random, so concurrent checkouts never contend for a counter
    (40 bits a day; the unique constraint catches the improbable clash)."""
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{now:%Y%m%d}-{suffix}"
