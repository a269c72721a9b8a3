"""Webhook subscriptions and their deliveries: the use cases behind the HQ webhook endpoints,
with the rules on where webhooks may go and how their signing secrets are kept."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import Conflict, InvalidInput, NotFound
from zhongtai.core.ids import new_id
from zhongtai.core.outbox import EVENT_TYPES
from zhongtai.core.pagination import PageParams, paginate
from zhongtai.core.settings import Settings
from zhongtai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) -> the IP addresses the host resolves to, as text.
AddressResolver = Callable[[str, int], Sequence[str]]

# IPv6 prefixes that carry an IPv4 address a gateway would forward to: the address checked is
# the embedded one (64:ff9b::10.0.0.1 reaches 10.0.0.1 through a NAT64 gateway).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class TargetRefused(OSError):
    """A URL webhooks may not go to: not http(s), or a host on a non-public address.

    An :class:`OSError`, so that the sender's HTTP connector takes a refusal by its resolver
    as a failed lookup, and the attempt fails with this message.
    """


def _reached(ip: IPAddress) -> IPAddress:
    """The address a connection to ``ip`` really reaches: the IPv4 address an IPv6 one carries
    (IPv4-mapped, 6to4, NAT64), else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` an internal target (``"loopback"``, ``"private"``, ...), or None when
    it is a public, globally routable unicast address."""
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        # Shared address space (100.64.0.0/10) and other special-purpose blocks.
        ("non-global", not ip.is_global),
    )
    return next((kind for kind, applies in checks if applies), None)


def address_refusal(address: str, *, allow_private: bool = False) -> str | None:
    """Why a webhook may not go to ``address`` (an IP address as text), or None when it may."""
    # An IPv6 zone (fe80::1%eth0) names an interface, not an address: set aside.
    ip = _reached(ipaddress.ip_address(address.split("%", 1)[0]))
    kind = address_kind(ip)
    if kind is None or allow_private:
        return None
    return f"{ip} is a {kind} address"


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def url_refusal(url: str, *, allow_private: bool = False) -> str | None:
    """Why ``url`` may not be a webhook target by the URL alone (its scheme, its host, an IP
    address written in it), or None. A host *name* still has to be resolved and checked."""
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an absolute http:// or https:// URL"
    literal = _ip_literal(host)
    if literal is None:
        return None
    return address_refusal(literal, allow_private=allow_private)


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as the HTTP client uses)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class TargetGuard:
    """Decides whether a URL may be subscribed: http(s), and, unless private targets are
    allowed, every address its host resolves to public. The sender checks again at each
    connection, since what a name resolves to can change after it was subscribed."""

    allow_private: bool = False
    resolve: AddressResolver = resolve_addresses

    def check(self, url: str) -> None:
        """Raises :class:`TargetRefused` saying why ``url`` may not be a webhook target."""
        reason = url_refusal(url, allow_private=self.allow_private)
        if reason is not None:
            raise TargetRefused(reason)
        parts = urlsplit(url)
        host = parts.hostname or ""
        if self.allow_private or _ip_literal(host) is not None:
            return
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = list(self.resolve(host, port))
        except OSError as exc:
            raise TargetRefused(f"{host} does not resolve ({exc.strerror or exc})") from None
        if not addresses:
            raise TargetRefused(f"{host} does not resolve")
        for address in addresses:
            refusal = address_refusal(address)
            if refusal is not None:
                raise TargetRefused(f"{host} resolves to {refusal}")


class SecretUnreadable(ValueError):
    """A sealed signing secret does not open: ZHONGTAI_SECRET_KEY changed since it was sealed."""


_SEALED_FORMAT = b"\x01"  # leading version byte, so the key or scheme can change later
_NONCE_BYTES = 12


class WebhookSecrets:
    """Seals subscriptions' signing secrets for the database and opens them for the signer.

    AES-GCM under a key derived (HKDF-SHA256) from ZHONGTAI_SECRET_KEY. The subscription id is
    the associated data, so a sealed secret copied onto another subscription does not open.
    """

    def __init__(self, key_material: bytes) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"zhongtai/webhooks/secret/v1"
        ).derive(key_material)
        self._aead = AESGCM(key)

    def seal(self, subscription_id: uuid.UUID, secret: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), subscription_id.bytes)
        return _SEALED_FORMAT + nonce + sealed

    def open(self, subscription_id: uuid.UUID, sealed: bytes) -> str:
        if not sealed.startswith(_SEALED_FORMAT):
            raise SecretUnreadable("unknown sealed secret format")
        nonce, box = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, box, subscription_id.bytes).decode()
        except InvalidTag:
            raise SecretUnreadable(
                "the signing secret does not open with this ZHONGTAI_SECRET_KEY (was the key "
                "changed?); subscribe again to get a new secret"
            ) from None


@lru_cache(maxsize=8)
def _secrets_for(key_material: bytes) -> WebhookSecrets:
    return WebhookSecrets(key_material)


def webhook_secrets(settings: Settings) -> WebhookSecrets:
    """The sealer of signing secrets for this deployment's ZHONGTAI_SECRET_KEY."""
    return _secrets_for(settings.secret_key.get_secret_value().encode())


def _check_event_types(event_types: Sequence[str]) -> None:
    unknown = sorted(set(event_types) - EVENT_TYPES.keys())
    if unknown:
        raise InvalidInput.field(
            "event_types",
            f"unknown event types {unknown}; the catalogue is docs/events.md",
        )


def create_subscription(
    session: Session,
    *,
    url: str,
    event_types: Sequence[str],
    guard: TargetGuard,
    sealer: WebhookSecrets,
    store_ids: Sequence[uuid.UUID] | None = None,
    secret: str | None = None,
    description: str = "",
) -> tuple[WebhookSubscription, str]:
    """Subscribe ``url`` to events; returns the subscription and its signing secret.

    ``guard`` refuses URLs webhooks may not go to (422 naming ``url``); the secret is stored
    sealed by ``sealer``, so the caller sees it in clear this once only.
    """
    _check_event_types(event_types)
    try:
        guard.check(url)  # last: it may ask DNS
    except TargetRefused as refused:
        raise InvalidInput.field("url", str(refused)) from None
    secret = secret or f"whsec_{secrets.token_urlsafe(32)}"
    subscription_id = new_id()
    subscription = WebhookSubscription(
        id=subscription_id,
        url=url,
        description=description,
        event_types=sorted(set(event_types)),
        store_ids=None if store_ids is None else sorted({str(s) for s in store_ids}),
        secret_sealed=sealer.seal(subscription_id, secret),
        active=True,
    )
    session.add(subscription)
    session.flush()
    return subscription, secret


def get_subscription(session: Session, subscription_id: uuid.UUID) -> WebhookSubscription:
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"No webhook subscription {subscription_id}.")
    return subscription


def list_subscriptions(
    session: Session, page: PageParams
) -> tuple[list[WebhookSubscription], str | None]:
    return paginate(session, select(WebhookSubscription), [WebhookSubscription.id], page)


def deactivate_subscription(session: Session, subscription_id: uuid.UUID) -> WebhookSubscription:
    """Stop delivering to a subscription (its pending deliveries wait; nothing is sent)."""
    subscription = get_subscription(session, subscription_id)
    session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id)
        .values(active=False, updated_at=utcnow())
    )
    session.refresh(subscription)
    return subscription


def list_deliveries(
    session: Session,
    page: PageParams,
    *,
    subscription_id: uuid.UUID | None = None,
    status: DeliveryStatus | None = None,
) -> tuple[list[WebhookDelivery], str | None]:
    stmt = select(WebhookDelivery)
    if subscription_id is not None:
        stmt = stmt.where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    return paginate(session, stmt, [WebhookDelivery.id], page)


def redrive_delivery(session: Session, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a dead delivery again from a fresh attempt count; 409 unless it is dead."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == DeliveryStatus.DEAD)
        .values(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            updated_at=utcnow(),
        )
    )
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"No webhook delivery {delivery_id}.")
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Conflict(
            f"Delivery {delivery_id} is {delivery.status.value}; only dead ones are re-driven.",
            delivery_status=delivery.status.value,
        )
    session.refresh(delivery)
    return delivery


def redrive_dead(session: Session, subscription_id: uuid.UUID) -> int:
    """Send every dead delivery of a subscription again; returns how many."""
    get_subscription(session, subscription_id)
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.status == DeliveryStatus.DEAD,
        )
        .values(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            updated_at=utcnow(),
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
