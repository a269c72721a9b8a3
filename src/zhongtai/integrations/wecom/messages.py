"""WeCom callback events: the decrypted XML read safely and parsed into typed values.

The event the guides context acts on is ``change_external_contact``: a customer (an external
contact) and a shopping guide (a WeCom user) became or stopped being contacts. Its XML, as WeCom
documents it::

    <xml>
      <ToUserName><![CDATA[corp id]]></ToUserName>
      <FromUserName><![CDATA[sys]]></FromUserName>
      <CreateTime>1403610513</CreateTime>
      <MsgType><![CDATA[event]]></MsgType>
      <Event><![CDATA[change_external_contact]]></Event>
      <ChangeType><![CDATA[add_external_contact]]></ChangeType>
      <UserID><![CDATA[the guide]]></UserID>
      <ExternalUserID><![CDATA[the customer]]></ExternalUserID>
      <State><![CDATA[state of the guide's "contact me" QR code]]></State>
      <WelcomeCode><![CDATA[code to send a welcome message with]]></WelcomeCode>
    </xml>

Every other message or event parses into ``UnhandledWeComEvent`` so the caller can acknowledge it
and move on (WeCom retries a callback that is not acknowledged).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as defused_etree
from defusedxml import DefusedXmlException

from zhongtai.integrations.wecom.errors import WeComMessageInvalid

_WHOLE_SECONDS = re.compile(r"^[0-9]{1,11}$")  # up to year 5138; datetime ends at 9999


class ExternalContactChange(StrEnum):
    """What happened between a guide and a customer (``ChangeType`` of the event)."""

    ADD_EXTERNAL_CONTACT = "add_external_contact"  # the guide added the customer, or was added
    EDIT_EXTERNAL_CONTACT = "edit_external_contact"  # the guide edited remarks or tags
    # the customer added the guide without the guide's confirmation yet
    ADD_HALF_EXTERNAL_CONTACT = "add_half_external_contact"
    DEL_EXTERNAL_CONTACT = "del_external_contact"  # the guide removed the customer
    DEL_FOLLOW_USER = "del_follow_user"  # the customer removed the guide
    TRANSFER_FAIL = "transfer_fail"  # handing the customer over to another guide failed


_CHANGE_TYPES = frozenset(change.value for change in ExternalContactChange)


@dataclass(frozen=True)
class ExternalContactChanged:
    """A ``change_external_contact`` event.

    ``corp_id`` is ``ToUserName``, ``created_at`` is ``CreateTime``, ``user_id`` is ``UserID``
    (the guide; for ``transfer_fail`` the guide who was to take over), ``external_user_id`` is
    ``ExternalUserID`` (the customer, as this corp sees them). ``state`` is the ``State`` the
    guide's "contact me" QR code carried, ``welcome_code`` the ``WelcomeCode`` a welcome message
    may be sent with, ``fail_reason`` the ``FailReason`` of a ``transfer_fail``
    (``customer_refused``, ``customer_limit_exceed``) and ``source`` the ``Source`` of a
    ``del_external_contact`` (``DELETE_BY_TRANSFER`` when the removal came from a handover, not
    from the guide). Absent or empty optional fields are ``None``.
    """

    change_type: ExternalContactChange
    corp_id: str
    created_at: datetime
    user_id: str
    external_user_id: str
    state: str | None = None
    welcome_code: str | None = None
    fail_reason: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class UnhandledWeComEvent:
    """A message or event this platform does not act on, kept whole for logging.

    ``fields`` maps each top-level element of the XML to its text (the first one, if repeated).
    """

    msg_type: str | None
    event: str | None
    change_type: str | None
    fields: Mapping[str, str] = field(hash=False)


WeComEvent = ExternalContactChanged | UnhandledWeComEvent


def read_xml(document: str | bytes) -> Element:
    """Parse one WeCom XML document (``<xml>...</xml>``), refusing any DTD or entity.

    A DTD is refused outright, not only its entities: WeCom never sends one, so its presence
    alone marks the document as not from WeCom (and rules out entity-expansion and XXE attacks).
    """
    try:
        root: Element = defused_etree.fromstring(document, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise WeComMessageInvalid(
            f"XML with a DTD or entity declarations is refused ({type(exc).__name__})"
        ) from exc
    except ParseError as exc:
        raise WeComMessageInvalid(f"malformed XML: {exc}") from exc
    if root.tag != "xml":
        raise WeComMessageInvalid(f"the root element is <{root.tag}>, not <xml>")
    return root


def top_level_fields(root: Element) -> dict[str, str]:
    """The text of each child of ``root`` by tag, stripped; the first wins if a tag repeats."""
    fields: dict[str, str] = {}
    for child in root:
        fields.setdefault(child.tag, (child.text or "").strip())
    return fields


def parse_event(xml: str) -> WeComEvent:
    """Parse the decrypted XML of a callback into a typed event.

    Raises ``WeComMessageInvalid`` for malformed XML, a DTD or entities, or a
    ``change_external_contact`` event of a known change type that lacks a required field.
    """
    fields = top_level_fields(read_xml(xml))
    msg_type = fields.get("MsgType") or None
    event = fields.get("Event") or None
    change_type = fields.get("ChangeType") or None
    if msg_type == "event" and event == "change_external_contact" and change_type in _CHANGE_TYPES:
        return _external_contact_changed(ExternalContactChange(change_type), fields)
    return UnhandledWeComEvent(
        msg_type=msg_type,
        event=event,
        change_type=change_type,
        fields=MappingProxyType(fields),
    )


def _external_contact_changed(
    change_type: ExternalContactChange, fields: Mapping[str, str]
) -> ExternalContactChanged:
    return ExternalContactChanged(
        change_type=change_type,
        corp_id=_required(fields, "ToUserName", change_type),
        created_at=_moment(_required(fields, "CreateTime", change_type)),
        user_id=_required(fields, "UserID", change_type),
        external_user_id=_required(fields, "ExternalUserID", change_type),
        state=fields.get("State") or None,
        welcome_code=fields.get("WelcomeCode") or None,
        fail_reason=fields.get("FailReason") or None,
        source=fields.get("Source") or None,
    )


def _required(fields: Mapping[str, str], name: str, change_type: ExternalContactChange) -> str:
    value = fields.get(name)
    if not value:
        raise WeComMessageInvalid(f"{change_type.value} event without {name}")
    return value


def _moment(create_time: str) -> datetime:
    if not _WHOLE_SECONDS.match(create_time):
        raise WeComMessageInvalid(f"CreateTime {create_time!r} is not whole Unix seconds")
    return datetime.fromtimestamp(int(create_time), UTC)
