"""What the orders' HTTP endpoints share: who may place or read orders, which sales channel a
caller sells on, which orders a caller may see, and where payment and courier providers call
back.

The checkout, order, payment and return routers each call these; the fulfilment routes use the
provider helpers too.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import Depends, Request

from zhongtai.core.auth.principal import Principal
from zhongtai.core.auth.roles import Channel, Permission
from zhongtai.core.errors import Forbidden, InvalidInput
from zhongtai.core.http.routing import replay_concerns
from zhongtai.core.http.security import require
from zhongtai.core.settings import Settings
from zhongtai.integrations.providers import Providers
from zhongtai.members.hooks import member_subject
from zhongtai.orders.kinds import SalesChannel
from zhongtai.orders.models import Order, Quote

READ = Depends(require(Permission.ORDERS_READ))
PLACE = Depends(require(Permission.ORDERS_PLACE))

Answer = TypeVar("Answer", Order, Quote)


def customers(request: Request, answer: Answer) -> Answer:
    """``answer``, an order or quote about to be answered: when it is a member's, its stored
    Idempotency-Key replay (contact, address) is stored as hers, so her erasure forgets it."""
    if answer.member_id is not None:
        replay_concerns(request, member_subject(answer.member_id))
    return answer


def providers_of(request: Request) -> Providers:
    found: Providers = request.app.state.providers
    return found


def callback_url(request: Request, settings: Settings, path: str) -> str:
    """Where a provider calls back: the public URL when set, else this request's own base."""
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + "/api/v1" + path


def sales_channel(principal: Principal, asked: SalesChannel | None) -> SalesChannel:
    """A channel key sells on its own channel (the app and mini-program also carry a guide's
    share links); staff name the channel they sell for."""
    if principal.channel is None:
        if asked is None:
            raise InvalidInput.field("channel", "staff name the sales channel of the order")
        return asked
    own = SalesChannel(principal.channel.value)
    if asked is None or asked is own:
        return own
    if asked is SalesChannel.GUIDE_SHARE and principal.channel in (
        Channel.APP,
        Channel.MINI_PROGRAM,
    ):
        return asked
    raise InvalidInput.field("channel", f"a {own.value} key sells on its own channel")


def ensure_may_see(principal: Principal, order: Order) -> None:
    """Staff see their stores' orders; a channel key sees the orders of its channel."""
    if principal.channel is not None:
        mine = {principal.channel.value}
        if principal.channel in (Channel.APP, Channel.MINI_PROGRAM):
            mine.add(SalesChannel.GUIDE_SHARE.value)
        if order.channel.value not in mine:
            raise Forbidden(
                f"Order {order.number} was not placed on the {principal.channel} channel."
            )
        if principal.store_ids is not None:
            principal.ensure_store(order.store_id)
        return
    principal.ensure_store(order.store_id)
