"""How the demo chain's members came to their shopping guides: won at the till, by a share link
or on WeCom, the links the guides shared and the members opened, the WeCom contacts (with the
consent adding one gives), and each member's bindings as the binding rule decides them."""

from __future__ import annotations

import string
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from zhongtai.demo import rhythm
from zhongtai.demo.catalog import Row
from zhongtai.demo.generator import DemoChain
from zhongtai.demo.guide_commission import GuideBooks
from zhongtai.demo.guide_roster import ACTOR, PULL, TERMS, DemoGuide, GuideWorld
from zhongtai.demo.seeded import stream, uuid7_at
from zhongtai.guides.attribution_rules import ShareTouch
from zhongtai.guides.binding_rules import (
    BindingSource,
    BindingVerdict,
    CurrentBinding,
    Touch,
    binding_after,
    decide_binding,
)
from zhongtai.members.models import ConsentChannel
from zhongtai.orders.kinds import SalesChannel

#: How a member first came to her guide.
FIRST_TOUCH = {
    BindingSource.IN_STORE_SALE: 40,
    BindingSource.WECOM: 35,
    BindingSource.SHARE_LINK: 25,
}
#: A share-link order of a bound member came through her own guide's link this often.
OWN_GUIDE_SHARES = 0.85
#: Before an app or mini-program order, a bound member had opened a guide's link this often
#: (an unbound one a third as often).
OPENED_A_LINK = 0.15
#: The clerk entered a bound member's guide at the till this often.
GUIDE_AT_TILL = 0.25
#: A member won another way also added her guide on WeCom this often.
ADDED_ON_WECOM = 0.3
#: WeCom contacts of each guide who are not (yet) known as members.
STRANGERS_ON_WECOM = (2, 6)
_ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True)
class _Touch:
    at: datetime
    guide_id: uuid.UUID
    source: BindingSource
    ref: str


class StoreGuideCustomers:
    """One store's guides and customers; its own random stream keeps other stores unchanged
    (the store's commission draws from it next)."""

    def __init__(
        self,
        world: GuideWorld,
        books: GuideBooks,
        chain: DemoChain,
        store: Row,
        guides: Sequence[DemoGuide],
        since: datetime,
        unionid_since: Mapping[uuid.UUID, datetime],
    ) -> None:
        self.world, self.books, self.store, self.guides = world, books, store, guides
        #: WeCom finds a contact's member by her WeChat unionid: only these can be met there.
        self.unionid_since = unionid_since
        self.rng = stream(chain.seed, f"guides:{store['code']}")
        self.since = since
        self.pull = {g: PULL[g.level] for g in guides}
        self.touches: dict[uuid.UUID, list[_Touch]] = defaultdict(list)
        self.opened: dict[uuid.UUID, list[ShareTouch]] = defaultdict(list)
        self.timelines: dict[uuid.UUID, list[Row]] = {}
        self.links: dict[tuple[uuid.UUID, uuid.UUID | None], list[Row]] = defaultdict(list)
        self.consented: set[uuid.UUID] = set()
        self.skus: list[uuid.UUID] = []

    # --- who a guide is to a member -------------------------------------------------------------

    def _any_guide(self) -> DemoGuide:
        return rhythm.pick(self.rng, self.pull)

    def _before(self, moment: datetime, earliest: datetime, most: timedelta) -> datetime:
        """A moment up to ``most`` before ``moment`` (at least an hour), not before ``earliest``."""
        at = moment - timedelta(seconds=self.rng.uniform(3600, most.total_seconds()))
        return max(at, min(earliest, moment - timedelta(minutes=5)))

    def _on_wechat(self, member_id: uuid.UUID, at: datetime) -> bool:
        """Whether the chain knew her WeChat unionid at ``at`` (a WeCom contact finds her)."""
        since = self.unionid_since.get(member_id)
        return since is not None and since <= at

    def _link(self, guide: DemoGuide, sku_id: uuid.UUID | None, opened_at: datetime) -> Row:
        """A link of the guide's for this SKU that works at ``opened_at``: one she made earlier if
        she has it (a link goes to many customers), else a new one made shortly before."""
        for made in reversed(self.links[(guide.staff_id, sku_id)]):
            if made["created_at"] <= opened_at < made["expires_at"]:
                return made
        created = max(
            opened_at - timedelta(minutes=self.rng.uniform(5, 3 * 24 * 60)),
            min(self.since, opened_at),
        )
        link: Row = {
            "id": uuid7_at(self.rng, created),
            "guide_id": guide.staff_id,
            "store_id": guide.store_id,
            "sku_id": sku_id,
            "coupon_template_id": None,
            "created_at": created,
            "expires_at": created + timedelta(days=TERMS.share_link_days),
            "opened_count": 0,
        }
        self.links[(guide.staff_id, sku_id)].append(link)
        self.world.links.append(link)
        return link

    def _open(
        self,
        guide: DemoGuide,
        member_id: uuid.UUID,
        sku_id: uuid.UUID | None,
        at: datetime,
        channel: str,
    ) -> None:
        """The member opened the guide's link: a visit, and a touch that may bind her."""
        link = self._link(guide, sku_id, at)
        link["opened_count"] += 1
        self.world.visits.append(
            {
                "id": uuid7_at(self.rng, at),
                "link_id": link["id"],
                "guide_id": guide.staff_id,
                "member_id": member_id,
                "sku_id": sku_id,
                "opened_at": at,
                "channel": channel,
            }
        )
        self.opened[member_id].append(ShareTouch(link["id"], guide.staff_id, at, sku_id))
        self.touches[member_id].append(
            _Touch(at, guide.staff_id, BindingSource.SHARE_LINK, str(link["id"]))
        )

    def _add_on_wecom(self, guide: DemoGuide, member_id: uuid.UUID | None, at: datetime) -> None:
        external = "wm" + "".join(self.rng.choices(_ALPHANUMERIC, k=30))
        self.world.contacts.append(
            {
                "id": uuid7_at(self.rng, at),
                "guide_id": guide.staff_id,
                "external_userid": external,
                "member_id": member_id,
                "added_at": at,
                "removed_at": None,
                "removed_by": None,
                "state": f"store:{self.store['code']}",
            }
        )
        if member_id is None:
            return
        if member_id not in self.consented:
            # Adding her guide on WeCom is how she agrees to hear from her there.
            self.consented.add(member_id)
            self.world.consents.append(
                {
                    "id": uuid7_at(self.rng, at),
                    "member_id": member_id,
                    "channel": ConsentChannel.WECOM,
                    "granted": True,
                    "recorded_at": at,
                    "source": "guide",
                    "actor": ACTOR,
                }
            )
        self.touches[member_id].append(_Touch(at, guide.staff_id, BindingSource.WECOM, external))

    def _name_at_till(self, order: Row, guide: DemoGuide) -> None:
        order["guide_id"] = guide.staff_id
        at, ref = order["placed_at"], str(order["id"])
        self.touches[order["member_id"]].append(
            _Touch(at, guide.staff_id, BindingSource.IN_STORE_SALE, ref)
        )

    def _shared_order(self, order: Row, guide: DemoGuide, earliest: datetime) -> None:
        """A share-link order: the guide's link, opened by the member shortly before she ordered
        (a guest's opening is not recorded: only members' visits are)."""
        order["guide_id"] = guide.staff_id
        lines = self.books.lines[order["id"]]
        sku_id = self.rng.choice(lines)["sku_id"] if self.rng.random() < 0.8 else None
        opened = order["placed_at"] - timedelta(minutes=self.rng.uniform(3, 36 * 60))
        if order["member_id"] is None:
            self._link(guide, sku_id, opened)
            return
        opened = max(opened, min(earliest, order["placed_at"] - timedelta(minutes=3)))
        self._open(guide, order["member_id"], sku_id, opened, self._opened_in())

    def _won_by_link(self, guide: DemoGuide, member_id: uuid.UUID, at: datetime) -> None:
        """She opened a link of the guide's (mostly for a product) and became hers."""
        sku_id = self.rng.choice(self.skus) if self.skus and self.rng.random() < 0.7 else None
        self._open(guide, member_id, sku_id, at, self._opened_in())

    def _opened_in(self) -> str:
        return "mini_program" if self.rng.random() < 0.7 else "app"

    # --- the members' stories -------------------------------------------------------------------

    def follow(
        self, member_id: uuid.UUID, registered: datetime, orders: list[Row], *, bound: bool
    ) -> None:
        """Her touches with the store's guides: how she was won (if she is among the bound),
        then what her orders brought — share links, her guide named at the till, WeCom."""
        rng = self.rng
        earliest = max(registered + timedelta(hours=1), self.since + timedelta(days=1))
        guide: DemoGuide | None = None
        won_at: datetime | None = None
        if bound:
            guide, source = self._any_guide(), rhythm.pick(rng, FIRST_TOUCH)
            first = orders[0]["placed_at"]
            till = next((o for o in orders if o["channel"] is SalesChannel.POS), None)
            if source is BindingSource.IN_STORE_SALE and till is not None:
                self._name_at_till(till, guide)
                won_at = till["placed_at"]
            elif source is BindingSource.SHARE_LINK:
                won_at = self._before(first, earliest, timedelta(days=45))
                self._won_by_link(guide, member_id, won_at)
            else:  # on WeCom (so is a member meant to be won at a till who never used one)
                won_at = self._before(first, earliest, timedelta(days=60))
                if self._on_wechat(member_id, won_at):
                    source = BindingSource.WECOM
                    self._add_on_wecom(guide, member_id, won_at)
                else:  # not on WeChat with the chain yet: her guide's link won her instead
                    source = BindingSource.SHARE_LINK
                    self._won_by_link(guide, member_id, won_at)
            if source is not BindingSource.WECOM and rng.random() < ADDED_ON_WECOM:
                later = won_at + (self.books.now - won_at) * rng.random()
                if self._on_wechat(member_id, later):
                    self._add_on_wecom(guide, member_id, later)
        for order in orders:
            mine = guide if won_at is not None and order["placed_at"] > won_at else None
            channel = order["channel"]
            if channel is SalesChannel.GUIDE_SHARE:
                sharer = mine if mine and rng.random() < OWN_GUIDE_SHARES else self._any_guide()
                self._shared_order(order, sharer, earliest)
                if guide is None:
                    guide, won_at = sharer, order["placed_at"]
            elif channel in (SalesChannel.APP, SalesChannel.MINI_PROGRAM):
                if rng.random() >= (OPENED_A_LINK if mine else OPENED_A_LINK / 3):
                    continue
                sharer = mine if mine and rng.random() < 0.8 else self._any_guide()
                lines = self.books.lines[order["id"]]
                sku_id = rng.choice(lines)["sku_id"] if rng.random() < 0.6 else None
                at = self._before(order["placed_at"], earliest, timedelta(days=5))
                self._open(sharer, member_id, sku_id, at, channel.value)
                if guide is None:
                    guide, won_at = sharer, order["placed_at"]
            elif (
                channel is SalesChannel.POS
                and mine is not None
                and order["guide_id"] is None
                and rng.random() < GUIDE_AT_TILL
            ):
                self._name_at_till(order, mine)

    def shared_anonymously(self, order: Row) -> None:
        self._shared_order(order, self._any_guide(), self.since)

    def strangers_on_wecom(self) -> None:
        span = (self.books.now - self.since).total_seconds()
        for guide in self.guides:
            for _ in range(self.rng.randint(*STRANGERS_ON_WECOM)):
                at = self.since + timedelta(seconds=self.rng.uniform(0, span))
                self._add_on_wecom(guide, None, at)

    def bind(self, member_id: uuid.UUID) -> None:
        """Her touches in the order they happened, through the binding rule: her bindings."""
        current: CurrentBinding | None = None
        timeline: list[Row] = []
        for touch in sorted(self.touches[member_id], key=lambda t: t.at):
            fact = Touch(guide_id=touch.guide_id, source=touch.source, at=touch.at)
            decision = decide_binding(current, fact, TERMS.binding_rule, TERMS.protection)
            if decision.verdict is BindingVerdict.KEEP:
                timeline[-1]["protected_until"] = decision.protected_until
            elif decision.verdict is not BindingVerdict.REFUSE:
                if timeline:
                    timeline[-1]["ended_at"] = max(touch.at, timeline[-1]["bound_at"])
                    timeline[-1]["end_reason"] = "rebound"
                timeline.append(
                    {
                        "id": uuid7_at(self.rng, touch.at),
                        "member_id": member_id,
                        "guide_id": touch.guide_id,
                        "source": touch.source,
                        "source_ref": touch.ref,
                        "bound_at": touch.at,
                        "protected_until": decision.protected_until,
                        "ended_at": None,
                        "end_reason": None,
                        "actor": ACTOR,
                    }
                )
            current = binding_after(current, fact, decision)
        self.timelines[member_id] = timeline
        self.world.bindings += timeline
