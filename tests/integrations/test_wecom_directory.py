"""The WeCom directory against a loopback WeCom: unionids, cached tokens, refresh on a dead one."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integrations.receiver import QuietHandler, serving
from zhongtai.integrations.wecom import (
    ExternalContactDirectory,
    WeComApiError,
    WeComDirectory,
    WeComUnavailable,
)

CORP = "ww0123456789abcdef"
SECRET = "app-secret-do-not-leak"
GETTOKEN = "/cgi-bin/gettoken"
CONTACT = "/cgi-bin/externalcontact/get"


@dataclass
class FakeWeCom:
    """WeCom's gettoken and externalcontact/get, with tokens that can be revoked at will."""

    url: str = ""
    expires_in: int = 7200
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    valid_tokens: set[str] = field(default_factory=set)
    #: errcode answered for a token that is not (or no longer) valid
    dead_token_errcode: int = 42001
    #: answer every contact lookup with this errcode, whatever the token
    refuse_every_token: int | None = None
    #: path -> (status, raw body) answered instead of the real thing
    raw_answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    stalled: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [query for p, query in self.requests if p == path]

    def revoke_tokens(self, errcode: int) -> None:
        with self.lock:
            self.valid_tokens.clear()
            self.dead_token_errcode = errcode

    def answer(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.requests.append((path, query))
            if path == GETTOKEN:
                if query.get("corpid") != CORP or query.get("corpsecret") != SECRET:
                    return {"errcode": 40001, "errmsg": "invalid credential"}
                self.issued += 1
                token = f"token-{self.issued}"
                self.valid_tokens.add(token)
                return {
                    "errcode": 0,
                    "errmsg": "ok",
                    "access_token": token,
                    "expires_in": self.expires_in,
                }
            if path == CONTACT:
                if self.refuse_every_token is not None:
                    return {"errcode": self.refuse_every_token, "errmsg": "token refused"}
                if query.get("access_token") not in self.valid_tokens:
                    return {"errcode": self.dead_token_errcode, "errmsg": "access_token expired"}
                contact = self.contacts.get(query.get("external_userid", ""))
                if contact is None:
                    return {"errcode": 84061, "errmsg": "not external contact"}
                return {
                    "errcode": 0,
                    "errmsg": "ok",
                    "external_contact": contact,
                    "follow_user": [],
                }
            return {"errcode": 404, "errmsg": "no such api"}


@contextmanager
def fake_wecom() -> Iterator[FakeWeCom]:
    wecom = FakeWeCom()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            if parts.path in wecom.stalled:
                wecom.release.wait(timeout=30)
            if parts.path in wecom.raw_answers:
                status, body = wecom.raw_answers[parts.path]
            else:
                status, body = 200, json.dumps(wecom.answer(parts.path, query)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as url:
        wecom.url = url
        try:
            yield wecom
        finally:
            wecom.release.set()


@dataclass
class FakeClock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with fake_wecom() as server:
        server.contacts["wmCUSTOMER-A"] = {
            "external_userid": "wmCUSTOMER-A",
            "name": "李四",
            "type": 1,
            "unionid": "ozynqsulJFCZ2z1aYeS8h-nuasdAAA",
        }
        server.contacts["wmWECOM-USER"] = {"external_userid": "wmWECOM-USER", "type": 2}
        server.contacts["wmEMPTY"] = {"external_userid": "wmEMPTY", "type": 1, "unionid": ""}
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def directory(wecom: FakeWeCom, clock: FakeClock) -> Iterator[WeComDirectory]:
    with WeComDirectory(CORP, SECRET, base_url=wecom.url, timeout=5.0, clock=clock) as client:
        yield client


def test_the_unionid_of_a_customer_is_looked_up_with_a_fresh_token(
    wecom: FakeWeCom, directory: WeComDirectory
) -> None:
    lookup: ExternalContactDirectory = directory
    assert lookup.unionid_of("wmCUSTOMER-A") == "ozynqsulJFCZ2z1aYeS8h-nuasdAAA"
    assert wecom.calls(GETTOKEN) == [{"corpid": CORP, "corpsecret": SECRET}]
    assert wecom.calls(CONTACT) == [{"access_token": "token-1", "external_userid": "wmCUSTOMER-A"}]


@pytest.mark.parametrize("external_userid", ["wmWECOM-USER", "wmEMPTY"])
def test_a_contact_without_a_unionid_has_none(
    directory: WeComDirectory, external_userid: str
) -> None:
    assert directory.unionid_of(external_userid) is None


def test_one_token_serves_many_lookups(wecom: FakeWeCom, directory: WeComDirectory) -> None:
    for _ in range(3):
        directory.unionid_of("wmCUSTOMER-A")
    assert len(wecom.calls(GETTOKEN)) == 1
    assert {call["access_token"] for call in wecom.calls(CONTACT)} == {"token-1"}


def test_concurrent_lookups_share_one_token_fetch(
    wecom: FakeWeCom, directory: WeComDirectory
) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        unionids = list(pool.map(directory.unionid_of, ["wmCUSTOMER-A"] * 32))
    assert set(unionids) == {"ozynqsulJFCZ2z1aYeS8h-nuasdAAA"}
    assert len(wecom.calls(GETTOKEN)) == 1


def test_the_token_is_replaced_shortly_before_it_expires(
    wecom: FakeWeCom, directory: WeComDirectory, clock: FakeClock
) -> None:
    directory.unionid_of("wmCUSTOMER-A")
    clock.now += 7200 - 300 - 1
    directory.unionid_of("wmCUSTOMER-A")
    assert len(wecom.calls(GETTOKEN)) == 1
    clock.now += 1
    directory.unionid_of("wmCUSTOMER-A")
    assert len(wecom.calls(GETTOKEN)) == 2
    assert wecom.calls(CONTACT)[-1]["access_token"] == "token-2"


@pytest.mark.parametrize("errcode", [42001, 40014], ids=["expired", "invalid"])
def test_a_token_wecom_no_longer_accepts_is_replaced_and_the_lookup_retried(
    wecom: FakeWeCom, directory: WeComDirectory, errcode: int
) -> None:
    directory.unionid_of("wmCUSTOMER-A")
    wecom.revoke_tokens(errcode)

    assert directory.unionid_of("wmCUSTOMER-A") == "ozynqsulJFCZ2z1aYeS8h-nuasdAAA"
    assert len(wecom.calls(GETTOKEN)) == 2
    assert [call["access_token"] for call in wecom.calls(CONTACT)] == [
        "token-1",
        "token-1",
        "token-2",
    ]
    directory.unionid_of("wmCUSTOMER-A")
    assert len(wecom.calls(GETTOKEN)) == 2, "the new token is cached in turn"


def test_a_token_refused_again_after_one_refresh_is_an_error_not_a_loop(
    wecom: FakeWeCom, directory: WeComDirectory
) -> None:
    wecom.refuse_every_token = 42001
    with pytest.raises(WeComApiError) as refused:
        directory.unionid_of("wmCUSTOMER-A")
    assert refused.value.errcode == 42001
    assert len(wecom.calls(GETTOKEN)) == 2
    assert len(wecom.calls(CONTACT)) == 2


def test_another_errcode_is_an_api_error_and_keeps_the_token(
    wecom: FakeWeCom, directory: WeComDirectory
) -> None:
    with pytest.raises(WeComApiError) as refused:
        directory.unionid_of("wmSTRANGER")
    assert (refused.value.errcode, refused.value.errmsg) == (84061, "not external contact")
    assert refused.value.code == "wecom-api-error"
    directory.unionid_of("wmCUSTOMER-A")
    assert len(wecom.calls(GETTOKEN)) == 1


def test_a_wrong_secret_is_an_api_error_and_nothing_is_cached(
    wecom: FakeWeCom, clock: FakeClock
) -> None:
    with WeComDirectory(CORP, "wrong-secret", base_url=wecom.url, clock=clock) as directory:
        for _ in range(2):
            with pytest.raises(WeComApiError) as refused:
                directory.unionid_of("wmCUSTOMER-A")
            assert refused.value.errcode == 40001
    assert len(wecom.calls(GETTOKEN)) == 2
    assert wecom.calls(CONTACT) == []


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        (GETTOKEN, 502, b"bad gateway"),
        (GETTOKEN, 200, b"<html>maintenance</html>"),
        (GETTOKEN, 200, b'{"errcode": 0, "errmsg": "ok"}'),
        (CONTACT, 200, b"[1, 2]"),
        (CONTACT, 200, b'{"errcode": 0, "errmsg": "ok"}'),
        (CONTACT, 200, b'{"errcode": "zero"}'),
    ],
    ids=[
        "http error",
        "not json",
        "token missing",
        "not an object",
        "contact missing",
        "errcode not a number",
    ],
)
def test_an_answer_that_is_not_wecoms_json_is_unavailable_and_leaks_no_secret(
    wecom: FakeWeCom, directory: WeComDirectory, path: str, status: int, body: bytes
) -> None:
    wecom.raw_answers[path] = (status, body)
    with pytest.raises(WeComUnavailable) as unavailable:
        directory.unionid_of("wmCUSTOMER-A")
    assert unavailable.value.code == "wecom-unavailable"
    assert SECRET not in str(unavailable.value)
    assert "token-1" not in str(unavailable.value)


def test_a_stalled_api_times_out_as_unavailable(wecom: FakeWeCom, clock: FakeClock) -> None:
    wecom.stalled.add(GETTOKEN)
    directory = WeComDirectory(CORP, SECRET, base_url=wecom.url, timeout=0.2, clock=clock)
    with directory, pytest.raises(WeComUnavailable, match="did not answer"):
        directory.unionid_of("wmCUSTOMER-A")


def test_an_unreachable_api_is_unavailable(clock: FakeClock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}"
    directory = WeComDirectory(CORP, SECRET, base_url=url, timeout=2.0, clock=clock)
    with directory, pytest.raises(WeComUnavailable, match="did not answer"):
        directory.unionid_of("wmCUSTOMER-A")


def test_an_empty_external_userid_is_a_programming_error(directory: WeComDirectory) -> None:
    with pytest.raises(ValueError, match="external_userid"):
        directory.unionid_of("")
