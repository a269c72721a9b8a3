"""WeCom events parse into typed values; other events pass through; hostile XML is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.integrations.wecom import (
    ExternalContactChange,
    ExternalContactChanged,
    UnhandledWeComEvent,
    WeComMessageInvalid,
    parse_event,
)


def contact_event(change_type: str, *extra: str, drop: str | None = None) -> str:
    """A change_external_contact event shaped like the samples of WeCom's "事件格式" page."""
    fields = [
        "<ToUserName><![CDATA[ww0123456789abcdef]]></ToUserName>",
        "<FromUserName><![CDATA[sys]]></FromUserName>",
        "<CreateTime>1403610513</CreateTime>",
        "<MsgType><![CDATA[event]]></MsgType>",
        "<Event><![CDATA[change_external_contact]]></Event>",
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType>",
        "<UserID><![CDATA[zhangsan]]></UserID>",
        "<ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACH71w]]></ExternalUserID>",
        *extra,
    ]
    if drop is not None:
        fields = [f for f in fields if not f.startswith(f"<{drop}>")]
    return "<xml>\n\t" + "\n\t".join(fields) + "\n</xml>"


SENT_AT = datetime(2014, 6, 24, 11, 48, 33, tzinfo=UTC)  # CreateTime 1403610513


def test_a_customer_adding_a_guide_by_her_qr_code_parses_with_state_and_welcome_code() -> None:
    event = parse_event(
        contact_event(
            "add_external_contact",
            "<State><![CDATA[teststate]]></State>",
            "<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>",
        )
    )
    assert event == ExternalContactChanged(
        change_type=ExternalContactChange.ADD_EXTERNAL_CONTACT,
        corp_id="ww0123456789abcdef",
        created_at=SENT_AT,
        user_id="zhangsan",
        external_user_id="woAJ2GCAAAXtWyujaWJHDDGi0mACH71w",
        state="teststate",
        welcome_code="WELCOMECODE",
    )
    assert event.created_at.tzinfo is not None
    assert event.created_at.utcoffset() == UTC.utcoffset(None)


@pytest.mark.parametrize(
    ("change_type", "extra", "expected"),
    [
        ("edit_external_contact", (), {}),
        (
            "add_half_external_contact",
            (
                "<State><![CDATA[teststate]]></State>",
                "<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>",
            ),
            {"state": "teststate", "welcome_code": "WELCOMECODE"},
        ),
        ("del_external_contact", (), {}),
        (
            "del_external_contact",
            ("<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>",),
            {"source": "DELETE_BY_TRANSFER"},
        ),
        ("del_follow_user", (), {}),
        (
            "transfer_fail",
            ("<FailReason><![CDATA[customer_refused]]></FailReason>",),
            {"fail_reason": "customer_refused"},
        ),
        (
            "transfer_fail",
            ("<FailReason><![CDATA[customer_limit_exceed]]></FailReason>",),
            {"fail_reason": "customer_limit_exceed"},
        ),
    ],
    ids=[
        "edit",
        "add half",
        "guide removed customer",
        "removed by a handover",
        "customer removed guide",
        "handover refused",
        "takeover guide full",
    ],
)
def test_each_change_type_parses_into_its_change(
    change_type: str, extra: tuple[str, ...], expected: dict[str, str]
) -> None:
    event = parse_event(contact_event(change_type, *extra))
    assert isinstance(event, ExternalContactChanged)
    assert event.change_type == ExternalContactChange(change_type)
    assert event.user_id == "zhangsan"
    assert event.external_user_id == "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w"
    assert event.created_at == SENT_AT
    optional = {
        name: getattr(event, name)
        for name in ("state", "welcome_code", "fail_reason", "source")
        if getattr(event, name) is not None
    }
    assert optional == expected


def test_every_documented_change_type_is_known() -> None:
    assert {change.value for change in ExternalContactChange} == {
        "add_external_contact",
        "edit_external_contact",
        "add_half_external_contact",
        "del_external_contact",
        "del_follow_user",
        "transfer_fail",
    }


def test_empty_optional_fields_read_as_absent() -> None:
    event = parse_event(
        contact_event(
            "del_external_contact",
            "<State><![CDATA[]]></State>",
            "<Source><![CDATA[]]></Source>",
        )
    )
    assert isinstance(event, ExternalContactChanged)
    assert event.state is None
    assert event.source is None


@pytest.mark.parametrize("field", ["ToUserName", "CreateTime", "UserID", "ExternalUserID"])
def test_a_contact_change_without_a_required_field_is_refused_by_name(field: str) -> None:
    with pytest.raises(WeComMessageInvalid, match=field):
        parse_event(contact_event("add_external_contact", drop=field))


def test_an_empty_required_field_is_refused() -> None:
    xml = contact_event("del_follow_user").replace("zhangsan", "")
    with pytest.raises(WeComMessageInvalid, match="UserID"):
        parse_event(xml)


@pytest.mark.parametrize(
    "create_time", ["yesterday", "-1", "1403610513.5", "１４０３", "999999999999"]
)
def test_a_create_time_that_is_not_unix_seconds_is_refused(create_time: str) -> None:
    xml = contact_event("add_external_contact").replace("1403610513", create_time)
    with pytest.raises(WeComMessageInvalid, match="CreateTime"):
        parse_event(xml)


def test_an_unknown_change_type_passes_through_for_acknowledgement() -> None:
    event = parse_event(
        contact_event("msg_audit_approved", "<WelcomeCode><![CDATA[W]]></WelcomeCode>")
    )
    assert isinstance(event, UnhandledWeComEvent)
    assert (event.msg_type, event.event, event.change_type) == (
        "event",
        "change_external_contact",
        "msg_audit_approved",
    )
    assert event.fields["UserID"] == "zhangsan"
    assert event.fields["WelcomeCode"] == "W"


def test_an_unknown_change_type_passes_through_even_without_the_usual_fields() -> None:
    event = parse_event(contact_event("msg_audit_approved", drop="UserID"))
    assert isinstance(event, UnhandledWeComEvent)


def test_another_event_passes_through() -> None:
    event = parse_event(
        "<xml><ToUserName><![CDATA[ww01]]></ToUserName><CreateTime>1403610513</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>"
        "<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>"
        "<ChangeType><![CDATA[create]]></ChangeType></xml>"
    )
    assert isinstance(event, UnhandledWeComEvent)
    assert (event.event, event.change_type) == ("change_external_chat", "create")
    assert event.fields["ChatId"] == "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"


def test_a_text_message_passes_through_without_event_or_change_type() -> None:
    event = parse_event(
        "<xml><ToUserName><![CDATA[ww01]]></ToUserName>"
        "<FromUserName><![CDATA[mycreate]]></FromUserName><CreateTime>1409659813</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content></xml>"
    )
    assert event == UnhandledWeComEvent(
        msg_type="text",
        event=None,
        change_type=None,
        fields={
            "ToUserName": "ww01",
            "FromUserName": "mycreate",
            "CreateTime": "1409659813",
            "MsgType": "text",
            "Content": "hello",
        },
    )


def test_the_fields_of_an_unhandled_event_cannot_be_changed() -> None:
    event = parse_event("<xml><MsgType>text</MsgType></xml>")
    assert isinstance(event, UnhandledWeComEvent)
    with pytest.raises(TypeError):
        event.fields["MsgType"] = "event"  # type: ignore[index]


@pytest.mark.parametrize(
    "xml",
    [
        "",
        "<xml><UserID>zhangsan</xml>",
        "not xml at all",
        "<xml></xml><xml></xml>",
    ],
    ids=["empty", "unclosed element", "text", "two roots"],
)
def test_malformed_xml_is_refused(xml: str) -> None:
    with pytest.raises(WeComMessageInvalid, match="malformed"):
        parse_event(xml)


def test_a_root_other_than_xml_is_refused() -> None:
    with pytest.raises(WeComMessageInvalid, match="root"):
        parse_event("<message><MsgType>text</MsgType></message>")


@pytest.mark.parametrize(
    "xml",
    [
        '<!DOCTYPE xml SYSTEM "http://evil.example/x.dtd"><xml><MsgType>text</MsgType></xml>',
        "<!DOCTYPE xml><xml><MsgType>text</MsgType></xml>",
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        "<xml><Content>&lol2;</Content></xml>",
        '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><UserID>&x;</UserID></xml>',
    ],
    ids=["external dtd", "bare doctype", "entity expansion", "external entity"],
)
def test_xml_bearing_a_dtd_is_refused(xml: str) -> None:
    with pytest.raises(WeComMessageInvalid, match="DTD"):
        parse_event(xml)


ids = st.text(alphabet=st.sampled_from("abcXYZ019_-.@"), min_size=1, max_size=40)
states = st.text(alphabet=st.sampled_from("门店导购扫码abc019-_ "), max_size=30)


@given(
    change=st.sampled_from(list(ExternalContactChange)),
    user_id=ids,
    external_user_id=ids,
    state=states,
    create_time=st.integers(min_value=0, max_value=4_102_444_800),
)
def test_generated_contact_changes_read_back_exactly(
    change: ExternalContactChange,
    user_id: str,
    external_user_id: str,
    state: str,
    create_time: int,
) -> None:
    xml = (
        "<xml><ToUserName><![CDATA[ww01]]></ToUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change.value}]]></ChangeType>"
        f"<UserID><![CDATA[{user_id}]]></UserID>"
        f"<ExternalUserID><![CDATA[{external_user_id}]]></ExternalUserID>"
        f"<State><![CDATA[{state}]]></State></xml>"
    )
    event = parse_event(xml)
    assert isinstance(event, ExternalContactChanged)
    assert event.change_type is change
    assert event.user_id == user_id
    assert event.external_user_id == external_user_id
    assert event.state == (state.strip() or None)
    assert event.created_at == datetime.fromtimestamp(create_time, UTC)
