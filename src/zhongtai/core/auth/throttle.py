"""Throttling of failed logins and key checks, counted in the database so every process agrees.

A limit holds exactly only if the count a try is judged by includes every try judged before
it. Two ways keep it so here:

- the try is judged and counted in one transaction that holds the locks of its subject and
  address (:func:`hold_tries`, :func:`count_failure`), and the caller commits that transaction
  with the refusal; tries racing it wait for the locks and then see it (logins, pickup codes);
- or the failure is committed first, in a transaction of its own, and the count read after
  (:func:`record_failure`, then :func:`ensure_not_throttled`): the k-th failure to commit reads
  at least k (unknown API keys, whose request may hold only a read-only session).

A login's slow work, its password hash (tens to hundreds of milliseconds), is done before its
judging transaction begins, in no transaction at all: on SQLite that transaction holds the
store's one write lock (BEGIN IMMEDIATE), which every till sale and order waits for; on
PostgreSQL it holds the advisory locks of the username and the address, and a connection. The
hash's verdict judges nothing until the transaction rechecks the count under the locks, so a
try checked while the limit was reached elsewhere still answers 429, and the limit stays exact
on both databases with one short write transaction per login, the same on both. (Reserving
the try first, as a provisional failure committed before the hash and settled after, would be
exact too, but costs a second write transaction per login.) Tries that arrive together each
pay a hash until the limit's failures are committed; the first look at the count, before the
hash, spares it to those that come after.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from zhongtai.core.auth.models import AuthFailure
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import TooManyAttempts
from zhongtai.core.logging import get_logger

log = get_logger("zhongtai.auth")

# Both locks in one statement, always in this order (address, then subject), so that two tries
# never wait for each other crosswise. Transaction-scoped: let go at commit or rollback.
_HOLD_TRIES = text(
    "SELECT pg_advisory_xact_lock(CAST(:address AS bigint)), "
    "pg_advisory_xact_lock(CAST(:subject AS bigint))"
)


def ensure_not_throttled(
    session: Session,
    *,
    kind: str,
    subject: str | None,
    client_ip: str,
    max_per_subject: int,
    max_per_ip: int,
    window: timedelta,
) -> None:
    since = utcnow() - window
    conditions = [AuthFailure.client_ip == client_ip]
    if subject is not None:
        conditions.append(AuthFailure.subject == subject)
    rows = session.execute(
        select(AuthFailure.subject, AuthFailure.client_ip, func.count())
        .where(AuthFailure.kind == kind, AuthFailure.at >= since, or_(*conditions))
        .group_by(AuthFailure.subject, AuthFailure.client_ip)
    ).all()
    by_subject = sum(n for s, _ip, n in rows if subject is not None and s == subject)
    by_ip = sum(n for _s, ip, n in rows if ip == client_ip)
    if by_subject >= max_per_subject or by_ip >= max_per_ip:
        log.warning("auth.throttled", kind=kind, subject=subject, client_ip=client_ip)
        raise TooManyAttempts(
            "Too many failed attempts; wait before trying again.",
            headers={"Retry-After": str(int(window.total_seconds()))},
        )


def hold_tries(session: Session, *, kind: str, subject: str, client_ip: str) -> None:
    """Make the other tries of this subject or from this address wait until the caller's
    transaction ends; take it before reading the count the try is judged by.

    On PostgreSQL: advisory locks on the subject and the address, whether or not the subject
    names a row (an unknown username is locked like a known one, so both answer alike). On
    SQLite the caller's writer transaction holds the database's one write lock already, from
    its first statement: do slow work (a password hash) before that.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        _HOLD_TRIES,
        {
            "address": _lock_key(kind, "address", client_ip),
            "subject": _lock_key(kind, "subject", subject),
        },
    )


def _lock_key(kind: str, of: str, value: str) -> int:
    """A 64-bit advisory lock key for one subject or address of one kind of try. Two values
    sharing a key only wait for each other; a clash with another user of advisory locks (the
    category tree's key is a CRC-32) is as unlikely."""
    digest = hashlib.blake2b(
        f"zhongtai.auth.throttle\0{kind}\0{of}\0{value}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def count_failure(
    session: Session, *, kind: str, subject: str, client_ip: str, reason: str
) -> None:
    """Count a refused try in the caller's transaction, which holds :func:`hold_tries`: the
    caller commits it with the refusal. Rolled back, the try would go uncounted."""
    log.warning("auth.failed", kind=kind, subject=subject, client_ip=client_ip, reason=reason)
    session.add(_failure(kind, subject, client_ip, reason))


def record_failure(
    writer: sessionmaker[Session], *, kind: str, subject: str, client_ip: str, reason: str
) -> None:
    """Written in a transaction of its own, committed before this returns: for a caller whose
    own transaction cannot write it (it is about to roll back, or only reads)."""
    log.warning("auth.failed", kind=kind, subject=subject, client_ip=client_ip, reason=reason)
    with writer() as session, session.begin():
        session.add(_failure(kind, subject, client_ip, reason))


def _failure(kind: str, subject: str, client_ip: str, reason: str) -> AuthFailure:
    # Cut to the columns: a failure that cannot be written would go uncounted.
    return AuthFailure(kind=kind, subject=subject[:128], client_ip=client_ip, reason=reason[:64])
