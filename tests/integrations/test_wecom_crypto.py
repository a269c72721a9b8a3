"""The WeCom callback protocol: published vectors open, round trips hold, forgeries are refused."""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.integrations.wecom import (
    ExternalContactChange,
    ExternalContactChanged,
    UnhandledWeComEvent,
    WeComCallbackError,
    WeComCrypto,
    WeComDecryptError,
    WeComMessageInvalid,
    WeComReceiverMismatch,
    WeComSignatureInvalid,
    WeComTimestampStale,
    parse_event,
)
from zhongtai.integrations.wecom.messages import read_xml, top_level_fields

# The parameters of WeCom's own sample ("加解密方案说明" and the WXBizMsgCrypt samples in every
# language, e.g. Sample.cs / Sample.py: sToken, sEncodingAESKey, sCorpID).
SAMPLE_TOKEN = "QDG6eK"
SAMPLE_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SAMPLE_CORP = "wx5823bf96d3bd56c7"

TOKEN = "zt-token-0123"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP = "ww0123456789abcdef"
SENT = 1_780_000_000
NOW = datetime.fromtimestamp(SENT, UTC)

EVENT = (
    "<xml><ToUserName><![CDATA[ww0123456789abcdef]]></ToUserName>"
    "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1780000000</CreateTime>"
    "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
    "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
    "<UserID><![CDATA[guide.li]]></UserID>"
    "<ExternalUserID><![CDATA[wmCUSTOMER0001]]></ExternalUserID>"
    "<State><![CDATA[store-SH001]]></State><WelcomeCode><![CDATA[WELCOME]]></WelcomeCode></xml>"
)


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, KEY, CORP)


def aes_key(encoding_aes_key: str) -> bytes:
    return base64.b64decode(encoding_aes_key + "=")


def raw_decrypt(encoding_aes_key: str, encrypted: str) -> bytes:
    """AES-256-CBC with IV = key[:16], straight from the primitives, padding left on."""
    key = aes_key(encoding_aes_key)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()


def raw_encrypt(encoding_aes_key: str, padded: bytes) -> str:
    """Encrypt bytes the caller already laid out and padded (to forge broken plaintexts)."""
    key = aes_key(encoding_aes_key)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def sha1_signature(*parts: str) -> str:
    """The signature computed independently; SHA-1 because the protocol says so."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324


def callback_body(encrypted: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    ).encode()


def open_forged(crypto: WeComCrypto, encrypted: str) -> str:
    """Open a ciphertext signed with the right token, so only the decryption checks can refuse."""
    signature = sha1_signature(TOKEN, str(SENT), "n1", encrypted)
    return crypto.open_callback(signature, str(SENT), "n1", callback_body(encrypted), NOW)


# -- WeCom's published vectors ----------------------------------------------------------------


def test_the_published_url_verification_vector_answers_its_echo() -> None:
    # GET /cgi-bin/wxpush?msg_signature=5c45ff5e...&timestamp=1409659589&nonce=263014780&echostr=...
    # from the WXBizMsgCrypt samples (Sample.cs, Sample.php, WXBizMsgCryptTest.java).
    crypto = WeComCrypto(SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_CORP)
    echostr = (
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    )
    answer = crypto.verify_url(
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "1409659589",
        "263014780",
        echostr,
        now=datetime.fromtimestamp(1409659589, UTC),
    )
    assert answer == "1616140317555161061"


def test_the_published_event_vector_opens_to_its_text_message() -> None:
    # The POST of WeCom's "加解密方案说明" (msg_signature 477715d1..., timestamp 1409659813,
    # nonce 1372623149), whose plaintext the page prints: a text "hello" to wx5823bf96d3bd56c7.
    crypto = WeComCrypto(SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_CORP)
    encrypted = (
        "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qcz"
        "cdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8q"
        "Ljvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4L"
        "UMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rU"
        "PA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXd"
        "Q2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
    )
    body = (
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
        "<AgentID><![CDATA[218]]></AgentID></xml>"
    ).encode()

    inner = crypto.open_callback(
        "477715d11cdb4164915debcba66cb864d751f3e6",
        "1409659813",
        "1372623149",
        body,
        now=datetime.fromtimestamp(1409659813, UTC),
    )

    event = parse_event(inner)
    assert isinstance(event, UnhandledWeComEvent)
    assert event.msg_type == "text"
    assert event.fields["Content"] == "hello"
    assert event.fields["ToUserName"] == SAMPLE_CORP
    assert event.fields["MsgId"] == "4561255354251345929"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "我是中文abcd123",
            "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==",
        ),
        (
            "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName>"
            "<FromUserName><![CDATA[gh_7f083739789a]]></FromUserName>"
            "<CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video>"
            "<MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]>"
            "</MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title>"
            "<Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>",
            "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxl"
            "kupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8H"
            "LXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/7"
            "7bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEu"
            "Z+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/s"
            "lTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FN"
            "ERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy"
            "+9DMlaFExWUZQDajPkdPrEeOwofJb",
        ),
    ],
    ids=["chinese text", "video reply"],
)
def test_encrypting_with_a_fixed_random_prefix_matches_the_published_ciphertext(
    message: str, expected: str
) -> None:
    # WXBizMsgCryptTest.java of Tencent's Java sample (the same algorithm on the WeChat
    # platform): encodingAesKey "abc...EFG", appId "wxb11529c136998cb6", randomStr
    # "aaaabbbbccccdddd", replyMsg / replyMsg2 and their afterAesEncrypt / afterAesEncrypt2.
    crypto = WeComCrypto("pamtest", KEY, "wxb11529c136998cb6")
    assert crypto.encrypt(message, random_prefix=b"aaaabbbbccccdddd") == expected
    assert crypto.decrypt(expected) == message


def test_the_signature_is_sha1_of_the_sorted_concatenation() -> None:
    assert WeComCrypto.signature("b-token", "1780000000", "c-nonce", "A+cipher") == (
        hashlib.sha1(b"1780000000A+cipherb-tokenc-nonce").hexdigest()  # noqa: S324
    )


# -- round trips ------------------------------------------------------------------------------

messages = st.one_of(
    st.just(""),
    st.text(alphabet=st.sampled_from("导购会员门店扫码加好友中台 abcXYZ019<>&]]"), max_size=200),
    st.text(max_size=300),
)


@given(message=messages)
def test_any_message_sealed_as_a_callback_opens_to_itself(message: str) -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    sealed = crypto.sealed_callback(message, "n-42", SENT, agent_id="1000002")
    opened = crypto.open_callback(
        sealed.msg_signature, sealed.timestamp, sealed.nonce, sealed.body, NOW
    )
    assert opened == message


@given(message=messages)
def test_the_plaintext_is_laid_out_and_padded_to_32_byte_blocks(message: str) -> None:
    crypto = WeComCrypto(TOKEN, KEY, CORP)
    padded = raw_decrypt(KEY, crypto.encrypt(message))
    pad = padded[-1]
    assert len(padded) % 32 == 0
    assert 1 <= pad <= 32
    assert padded[-pad:] == bytes([pad]) * pad
    body = padded[16:-pad]
    (length,) = struct.unpack(">I", body[:4])
    assert body[4 : 4 + length] == message.encode()
    assert body[4 + length :] == CORP.encode()


def test_two_seals_of_one_message_differ_by_their_random_prefix(crypto: WeComCrypto) -> None:
    assert crypto.encrypt("同一条消息") != crypto.encrypt("同一条消息")


def test_a_passive_reply_carries_its_own_signature_timestamp_and_nonce(
    crypto: WeComCrypto,
) -> None:
    body = crypto.signed_body("<xml><Content>收到</Content></xml>", "reply-nonce", SENT)
    fields = top_level_fields(read_xml(body))
    assert fields["TimeStamp"] == str(SENT)
    assert fields["Nonce"] == "reply-nonce"
    assert fields["MsgSignature"] == sha1_signature(
        TOKEN, str(SENT), "reply-nonce", fields["Encrypt"]
    )
    opened = crypto.open_callback(fields["MsgSignature"], str(SENT), "reply-nonce", body, NOW)
    assert opened == "<xml><Content>收到</Content></xml>"


def test_url_verification_answers_the_plaintext_echo(crypto: WeComCrypto) -> None:
    echostr, signature = crypto.seal("8154620587304113", "n7", SENT)
    assert crypto.verify_url(signature, str(SENT), "n7", echostr, NOW) == "8154620587304113"


def test_an_opened_event_parses_into_the_contact_change(crypto: WeComCrypto) -> None:
    sealed = crypto.sealed_callback(EVENT, "n9", SENT)
    query = sealed.query
    inner = crypto.open_callback(
        query["msg_signature"], query["timestamp"], query["nonce"], sealed.body, NOW
    )
    event = parse_event(inner)
    assert isinstance(event, ExternalContactChanged)
    assert event.change_type is ExternalContactChange.ADD_EXTERNAL_CONTACT
    assert (event.user_id, event.external_user_id, event.state) == (
        "guide.li",
        "wmCUSTOMER0001",
        "store-SH001",
    )


# -- refusals ---------------------------------------------------------------------------------


def test_a_wrong_signature_is_refused(crypto: WeComCrypto) -> None:
    sealed = crypto.sealed_callback(EVENT, "n1", SENT)
    with pytest.raises(WeComSignatureInvalid):
        crypto.open_callback("0" * 40, sealed.timestamp, sealed.nonce, sealed.body, NOW)


@pytest.mark.parametrize("part", ["timestamp", "nonce"])
def test_a_changed_timestamp_or_nonce_breaks_the_signature(crypto: WeComCrypto, part: str) -> None:
    sealed = crypto.sealed_callback(EVENT, "n1", SENT)
    timestamp = str(SENT + 1) if part == "timestamp" else sealed.timestamp
    nonce = "n2" if part == "nonce" else sealed.nonce
    with pytest.raises(WeComSignatureInvalid):
        crypto.open_callback(sealed.msg_signature, timestamp, nonce, sealed.body, NOW)


def test_a_tampered_ciphertext_under_the_original_signature_is_refused(
    crypto: WeComCrypto,
) -> None:
    encrypted, signature = crypto.seal(EVENT, "n1", SENT)
    raw = bytearray(base64.b64decode(encrypted))
    raw[20] ^= 0x01
    tampered = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(WeComSignatureInvalid):
        crypto.open_callback(signature, str(SENT), "n1", callback_body(tampered), NOW)


def test_a_signature_from_another_token_is_refused() -> None:
    theirs = WeComCrypto("someone-elses-token", KEY, CORP)
    sealed = theirs.sealed_callback(EVENT, "n1", SENT)
    with pytest.raises(WeComSignatureInvalid):
        WeComCrypto(TOKEN, KEY, CORP).open_callback(
            sealed.msg_signature, sealed.timestamp, sealed.nonce, sealed.body, NOW
        )


def test_a_ciphertext_whose_padding_byte_was_flipped_is_refused_even_when_signed(
    crypto: WeComCrypto,
) -> None:
    # In CBC the last byte of the second-to-last block XORs into the padding byte.
    raw = bytearray(base64.b64decode(crypto.encrypt(EVENT)))
    raw[-17] ^= 0x80
    with pytest.raises(WeComDecryptError, match="padding"):
        open_forged(crypto, base64.b64encode(bytes(raw)).decode())


def layout(message: bytes, receive_id: bytes, *, length: int | None = None) -> bytes:
    return (
        b"R" * 16 + struct.pack(">I", len(message) if length is None else length) + message
    ) + receive_id


@pytest.mark.parametrize(
    "padding",
    [bytes([0]) * 32, bytes([33]) * 32, bytes([5, 5, 5, 5, 4])],
    ids=["zero", "more than a block", "inconsistent"],
)
def test_a_plaintext_with_bad_padding_is_refused(crypto: WeComCrypto, padding: bytes) -> None:
    content = layout(b"<xml/>", CORP.encode())
    filler = b"x" * ((-len(content) - len(padding)) % 32)
    forged = raw_encrypt(KEY, content + filler + padding)
    with pytest.raises(WeComDecryptError, match="padding"):
        open_forged(crypto, forged)


def test_padding_to_16_byte_blocks_is_not_the_protocol(crypto: WeComCrypto) -> None:
    content = layout(b"<xml/>", CORP.encode())
    pad = 16 - len(content) % 16
    padded = content + bytes([pad]) * pad
    assert len(padded) % 32 != 0, "the example must not happen to fill whole 32-byte blocks"
    with pytest.raises(WeComDecryptError, match="32-byte blocks"):
        open_forged(crypto, raw_encrypt(KEY, padded))


def pad32(content: bytes) -> bytes:
    pad = 32 - len(content) % 32
    return content + bytes([pad]) * pad


def test_a_message_length_longer_than_the_plaintext_is_refused(crypto: WeComCrypto) -> None:
    forged = raw_encrypt(KEY, pad32(layout(b"<xml/>", CORP.encode(), length=10_000)))
    with pytest.raises(WeComDecryptError, match="length"):
        open_forged(crypto, forged)


def test_a_message_that_is_not_utf8_is_refused(crypto: WeComCrypto) -> None:
    forged = raw_encrypt(KEY, pad32(layout(b"\xff\xfe<xml/>", CORP.encode())))
    with pytest.raises(WeComDecryptError, match="UTF-8"):
        open_forged(crypto, forged)


def test_a_ciphertext_that_is_not_base64_is_refused(crypto: WeComCrypto) -> None:
    with pytest.raises(WeComDecryptError, match="base64"):
        open_forged(crypto, "not*base64!")


def test_a_message_sealed_for_another_corp_is_refused(crypto: WeComCrypto) -> None:
    other_corp = WeComCrypto(TOKEN, KEY, "ww-another-corp")
    sealed = other_corp.sealed_callback(EVENT, "n1", SENT)
    with pytest.raises(WeComReceiverMismatch):
        crypto.open_callback(sealed.msg_signature, sealed.timestamp, sealed.nonce, sealed.body, NOW)


def test_url_verification_for_another_corp_is_refused(crypto: WeComCrypto) -> None:
    echostr, signature = WeComCrypto(TOKEN, KEY, "ww-another-corp").seal("123", "n1", SENT)
    with pytest.raises(WeComReceiverMismatch):
        crypto.verify_url(signature, str(SENT), "n1", echostr, NOW)


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_a_callback_too_far_from_now_is_refused(crypto: WeComCrypto, offset: int) -> None:
    sealed = crypto.sealed_callback(EVENT, "n1", SENT)
    with pytest.raises(WeComTimestampStale):
        crypto.open_callback(
            sealed.msg_signature,
            sealed.timestamp,
            sealed.nonce,
            sealed.body,
            NOW + timedelta(seconds=offset),
        )


def test_url_verification_with_a_stale_timestamp_is_refused(crypto: WeComCrypto) -> None:
    echostr, signature = crypto.seal("123", "n1", SENT)
    with pytest.raises(WeComTimestampStale):
        crypto.verify_url(signature, str(SENT), "n1", echostr, NOW + timedelta(minutes=10))


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_a_callback_within_the_window_is_accepted(crypto: WeComCrypto, offset: int) -> None:
    assert crypto.check_freshness(str(SENT), NOW + timedelta(seconds=offset)) == NOW


def test_the_window_is_configurable() -> None:
    strict = WeComCrypto(TOKEN, KEY, CORP, freshness_window=timedelta(seconds=30))
    with pytest.raises(WeComTimestampStale):
        strict.check_freshness(str(SENT), NOW + timedelta(seconds=31))


def test_a_timestamp_that_is_not_whole_seconds_is_refused(crypto: WeComCrypto) -> None:
    encrypted, _ = crypto.seal(EVENT, "n1", SENT)
    signature = sha1_signature(TOKEN, "1780000000.5", "n1", encrypted)
    with pytest.raises(WeComMessageInvalid, match="timestamp"):
        crypto.open_callback(signature, "1780000000.5", "n1", callback_body(encrypted), NOW)


@pytest.mark.parametrize("timestamp", ["", "soon", "-5", "999999999999"])
def test_freshness_refuses_a_timestamp_it_cannot_read(crypto: WeComCrypto, timestamp: str) -> None:
    with pytest.raises(WeComMessageInvalid, match="timestamp"):
        crypto.check_freshness(timestamp, NOW)


def test_freshness_needs_an_aware_now(crypto: WeComCrypto) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        crypto.check_freshness(str(SENT), datetime(2026, 5, 28, 12, 0))


def test_a_body_without_encrypt_is_refused(crypto: WeComCrypto) -> None:
    with pytest.raises(WeComMessageInvalid, match="Encrypt"):
        crypto.open_callback(
            "0" * 40, str(SENT), "n1", b"<xml><ToUserName>x</ToUserName></xml>", NOW
        )


def test_a_body_with_a_dtd_is_refused_before_anything_else(crypto: WeComCrypto) -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<xml><Encrypt>&e;</Encrypt></xml>"
    )
    with pytest.raises(WeComMessageInvalid, match="DTD"):
        crypto.open_callback("0" * 40, str(SENT), "n1", body, NOW)


def test_every_refusal_is_a_callback_error_with_its_own_stable_code() -> None:
    refusals = [
        WeComSignatureInvalid,
        WeComTimestampStale,
        WeComDecryptError,
        WeComReceiverMismatch,
        WeComMessageInvalid,
    ]
    assert all(issubclass(refusal, WeComCallbackError) for refusal in refusals)
    assert [refusal.code for refusal in refusals] == [
        "wecom-signature-invalid",
        "wecom-timestamp-stale",
        "wecom-decrypt-failed",
        "wecom-receiver-mismatch",
        "wecom-message-invalid",
    ]


# -- replay keys and configuration -----------------------------------------------------------


def test_the_replay_key_is_stable_and_names_one_callback() -> None:
    key = WeComCrypto.replay_key("1780000000", "n1", "abc")
    assert key == WeComCrypto.replay_key("1780000000", "n1", "abc")
    assert len(key) == 64
    assert key != WeComCrypto.replay_key("1780000001", "n1", "abc")
    assert key != WeComCrypto.replay_key("1780000000", "n2", "abc")
    assert key != WeComCrypto.replay_key("1780000000", "n1", "abd")


def test_the_replay_key_cannot_be_collided_by_moving_a_separator() -> None:
    assert WeComCrypto.replay_key("1", "2:3", "x") != WeComCrypto.replay_key("1:2", "3", "x")
    assert WeComCrypto.replay_key("1", "23", "x") != WeComCrypto.replay_key("12", "3", "x")


@pytest.mark.parametrize(
    "encoding_aes_key",
    [KEY[:-1], KEY + "=", KEY[:-1] + "*"],
    ids=["42 characters", "with its padding", "not base64"],
)
def test_an_encoding_aes_key_that_is_not_43_base64_characters_is_rejected(
    encoding_aes_key: str,
) -> None:
    with pytest.raises(ValueError, match="43"):
        WeComCrypto(TOKEN, encoding_aes_key, CORP)


def test_a_nonce_that_would_break_out_of_cdata_is_not_sealed(crypto: WeComCrypto) -> None:
    with pytest.raises(ValueError, match="CDATA"):
        crypto.signed_body("hi", "]]><Evil/>", SENT)
