"""Rolling a signing secret (webhook subscriptions, marketplace connections): a new secret sealed
in place of the old one, the old one kept sealed for an overlap, and which secrets sign when.

The overlap is what makes a rotation safe for a receiver that cannot switch at the very moment
HQ rotates: until it ends, each request carries a signature under the old secret beside the one
under the new secret (``rules.signature_header``), so the receiver verifies with either. A
secret that no longer opens (ZHONGTAI_SECRET_KEY changed) cannot sign, so it is not kept: such
a rotation is the recovery from a lost key, and switches at once.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from zhongtai.core.audit import record_audit
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import InvalidInput
from zhongtai.integrations.sealed_secrets import SecretSealer, SecretUnreadable

log = logging.getLogger(__name__)

#: A week at most: long enough for a receiver's change window, short enough that a leaked
#: secret does not stay good for long.
MAX_OVERLAP_SECONDS = 7 * 24 * 3600
#: A day: a receiver's team can change its configuration within a working day.
DEFAULT_OVERLAP_SECONDS = 24 * 3600


@dataclass(frozen=True)
class SealedSigningSecrets:
    """What a subscription or connection keeps: its secret, and during an overlap the secret it
    replaced with the moment that one stops signing."""

    current: bytes
    previous: bytes | None = None
    previous_expires_at: datetime | None = None


@dataclass(frozen=True)
class RolledSecret:
    """A rotation's outcome: the new secret in clear (for the caller, this once) and what to
    store."""

    secret: str
    sealed: SealedSigningSecrets
    #: False when the old secret did not open: it was dropped and the switch is immediate.
    previous_opened: bool


def check_overlap(overlap_seconds: int) -> None:
    """422 naming ``overlap_seconds`` unless it is within 0 .. 7 days."""
    if not 0 <= overlap_seconds <= MAX_OVERLAP_SECONDS:
        raise InvalidInput.field(
            "overlap_seconds", f"must be between 0 and {MAX_OVERLAP_SECONDS} (7 days)"
        )


def roll_secret(
    sealer: SecretSealer,
    owner_id: uuid.UUID,
    current: bytes,
    *,
    prefix: str,
    overlap_seconds: int,
    now: datetime,
) -> RolledSecret:
    """A new random secret for ``owner_id``, sealed; the sealed ``current`` one is kept as the
    previous secret for ``overlap_seconds`` if it opens (an earlier previous one is dropped:
    at most two secrets sign at once)."""
    check_overlap(overlap_seconds)
    try:
        sealer.open(owner_id, current)
    except SecretUnreadable:
        # The lost-key recovery: keeping a secret nobody can open would sign nothing.
        previous_opened = False
    else:
        previous_opened = True
    secret = f"{prefix}{secrets.token_urlsafe(32)}"
    overlap = previous_opened and overlap_seconds > 0
    return RolledSecret(
        secret=secret,
        sealed=SealedSigningSecrets(
            current=sealer.seal(owner_id, secret),
            previous=current if overlap else None,
            previous_expires_at=now + timedelta(seconds=overlap_seconds) if overlap else None,
        ),
        previous_opened=previous_opened,
    )


class SignedByRotatingSecret(Protocol):
    """A row that keeps a sealed signing secret and, during an overlap, the one it replaced."""

    secret_sealed: bytes
    previous_secret_sealed: bytes | None
    previous_secret_expires_at: datetime | None


def rotate_row_secret(
    session: Session,
    row: SignedByRotatingSecret,
    owner_id: uuid.UUID,
    *,
    sealer: SecretSealer,
    prefix: str,
    overlap_seconds: int,
    entity_type: str,
) -> RolledSecret:
    """Roll the secret of a row the caller has locked, store what to keep, and audit it as
    ``<entity_type>.secret_rotated`` (the overlap and whether the old secret opened, never a
    secret)."""
    before = {"previous_secret_expires_at": row.previous_secret_expires_at}
    rolled = roll_secret(
        sealer,
        owner_id,
        row.secret_sealed,
        prefix=prefix,
        overlap_seconds=overlap_seconds,
        now=utcnow(),
    )
    row.secret_sealed = rolled.sealed.current
    row.previous_secret_sealed = rolled.sealed.previous
    row.previous_secret_expires_at = rolled.sealed.previous_expires_at
    session.flush()
    record_audit(
        session,
        f"{entity_type}.secret_rotated",
        entity_type,
        owner_id,
        before,
        {
            "overlap_seconds": overlap_seconds,
            "previous_secret_opened": rolled.previous_opened,
            "previous_secret_expires_at": rolled.sealed.previous_expires_at,
        },
    )
    return rolled


def signing_secrets(
    sealer: SecretSealer, owner_id: uuid.UUID, sealed: SealedSigningSecrets, *, now: datetime
) -> list[str]:
    """The secrets a request sent at ``now`` is signed with: the current one first, then the
    previous one while its overlap lasts.

    :class:`SecretUnreadable` when the current secret does not open: nothing is sent then.
    """
    keys = [sealer.open(owner_id, sealed.current)]
    expires_at = sealed.previous_expires_at
    if sealed.previous is not None and expires_at is not None and now < expires_at:
        try:
            keys.append(sealer.open(owner_id, sealed.previous))
        except SecretUnreadable:
            # Both were sealed under the key that just opened the current one, so this means a
            # tampered row: the receivers on the new secret still verify.
            log.warning(
                "the previous signing secret does not open; signing with the current one only",
                extra={"owner": str(owner_id)},
            )
    return keys
