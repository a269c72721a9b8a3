"""Throttling of failed logins and key checks, counted in the database so every process agrees."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from zhongtai.core.auth.models import AuthFailure
from zhongtai.core.clock import utcnow
from zhongtai.core.errors import TooManyAttempts
from zhongtai.core.logging import get_logger

log = get_logger("zhongtai.auth")


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


def record_failure(
    writer: sessionmaker[Session], *, kind: str, subject: str, client_ip: str, reason: str
) -> None:
    """Written in a transaction of its own: the request's transaction is about to roll back."""
    log.warning("auth.failed", kind=kind, subject=subject, client_ip=client_ip, reason=reason)
    with writer() as session, session.begin():
        session.add(
            # Cut to the columns: a failure that cannot be written would go uncounted.
            AuthFailure(kind=kind, subject=subject[:128], client_ip=client_ip, reason=reason[:64])
        )
