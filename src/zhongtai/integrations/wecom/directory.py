"""The WeCom external-contact directory: from a callback's ExternalUserID to the WeChat unionid.

A callback names the customer only by ``ExternalUserID``, which means nothing outside this corp;
the member is found by WeChat unionid, which WeCom gives from
``GET /cgi-bin/externalcontact/get?access_token=..&external_userid=..`` as
``external_contact.unionid`` (absent when the corp has bound no WeChat developer account, or the
contact is a WeCom user of another corp).

Access tokens come from ``GET /cgi-bin/gettoken?corpid=..&corpsecret=..`` (``access_token``,
``expires_in`` seconds). WeCom rate-limits ``gettoken``, so a token is kept until shortly before
it expires; WeCom may also revoke one early, so a call refused with 40014 (invalid token) or 42001
(expired token) fetches a new token and is tried once more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import httpx

from zhongtai.integrations.wecom.errors import WeComApiError, WeComUnavailable

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
DEFAULT_TIMEOUT_SECONDS = 5.0
#: A token is replaced this long before WeCom says it expires, so no call races its expiry.
TOKEN_REFRESH_MARGIN_SECONDS = 300.0
#: errcodes that mean "this access token is no good": 40014 invalid, 42001 expired.
TOKEN_REJECTED = frozenset({40014, 42001})


class ExternalContactDirectory(Protocol):
    """Who an external contact is outside WeCom."""

    def unionid_of(self, external_userid: str) -> str | None:
        """The contact's WeChat unionid, or ``None`` when WeCom does not give one."""
        ...


@dataclass(frozen=True)
class _AccessToken:
    value: str
    replace_at: float  # on the directory's clock


class WeComDirectory:
    """``ExternalContactDirectory`` over WeCom's HTTP API, for one corp and one app secret.

    Safe to share between threads; ``close()`` (or ``with``) releases the connection pool.
    ``clock`` (seconds, monotonic) decides when a cached token is replaced.
    """

    def __init__(
        self,
        corp_id: str,
        secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin_seconds: float = TOKEN_REFRESH_MARGIN_SECONDS,
    ) -> None:
        if not corp_id or not secret:
            raise ValueError("a WeCom directory needs the corp id and the app secret")
        self._corp_id = corp_id
        self._secret = secret
        self._clock = clock
        self._refresh_margin = refresh_margin_seconds
        self._client = httpx.Client(base_url=base_url, timeout=timeout)
        self._lock = threading.Lock()
        self._token: _AccessToken | None = None

    def unionid_of(self, external_userid: str) -> str | None:
        if not external_userid:
            raise ValueError("external_userid must not be empty")
        token = self.access_token()
        answer = self._contact(token, external_userid)
        if (errcode := _errcode(answer)) in TOKEN_REJECTED:
            log.info("WeCom refused the access token (errcode %s); fetching a new one", errcode)
            answer = self._contact(self._fetch_token(replacing=token), external_userid)
        _raise_for_errcode(answer)
        contact = answer.get("external_contact")
        if not isinstance(contact, dict):
            raise WeComUnavailable("WeCom answered externalcontact/get without external_contact")
        unionid = contact.get("unionid")
        return unionid if isinstance(unionid, str) and unionid else None

    def access_token(self) -> str:
        """The cached access token, fetched anew when there is none or it is about to expire."""
        return self._fetch_token(replacing=None)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> WeComDirectory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _fetch_token(self, *, replacing: str | None) -> str:
        # One thread fetches while the others wait for its token: gettoken is rate-limited.
        with self._lock:
            cached = self._token
            if (
                cached is not None
                and cached.value != replacing
                and self._clock() < cached.replace_at
            ):
                return cached.value
            answer = self._get(
                "/cgi-bin/gettoken", {"corpid": self._corp_id, "corpsecret": self._secret}
            )
            _raise_for_errcode(answer)
            value = answer.get("access_token")
            expires_in = answer.get("expires_in")
            if not isinstance(value, str) or not value:
                raise WeComUnavailable("WeCom answered gettoken without an access_token")
            if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
                raise WeComUnavailable("WeCom answered gettoken without a positive expires_in")
            lifetime = max(expires_in - self._refresh_margin, 0.0)
            self._token = _AccessToken(value, self._clock() + lifetime)
            return value

    def _contact(self, token: str, external_userid: str) -> dict[str, Any]:
        return self._get(
            "/cgi-bin/externalcontact/get",
            {"access_token": token, "external_userid": external_userid},
        )

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        # Errors name the path only: the query carries the secret or the access token.
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise WeComUnavailable(f"WeCom {path} did not answer ({type(exc).__name__})") from exc
        if response.status_code != httpx.codes.OK:
            raise WeComUnavailable(f"WeCom {path} answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise WeComUnavailable(f"WeCom {path} answered something that is not JSON") from exc
        if not isinstance(answer, dict):
            raise WeComUnavailable(f"WeCom {path} answered JSON that is not an object")
        return answer


def _errcode(answer: dict[str, Any]) -> int:
    errcode = answer.get("errcode", 0)
    if isinstance(errcode, bool) or not isinstance(errcode, int):
        raise WeComUnavailable(f"WeCom answered a non-integer errcode {errcode!r}")
    return errcode


def _raise_for_errcode(answer: dict[str, Any]) -> None:
    errcode = _errcode(answer)
    if errcode != 0:
        raise WeComApiError(errcode, str(answer.get("errmsg", "")))
