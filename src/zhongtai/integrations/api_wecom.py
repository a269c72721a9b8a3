"""WeCom's callback URL: URL verification (GET) and encrypted contact events (POST).

Every callback is checked (signature, freshness, decryption, our corp) before anything is
done, and each signed message is applied once: a replayed one answers ``success`` and changes
nothing, also when the copies arrive at the same moment (they queue on the message's key). A
refused callback answers problem+json; WeCom retries what did not succeed.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Depends, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from zhongtai.core.clock import utcnow
from zhongtai.core.errors import DomainError, NotFound
from zhongtai.core.http.deps import app_settings, db_session
from zhongtai.core.http.routing import api_router, request_body
from zhongtai.core.settings import Settings
from zhongtai.guides.wecom_contacts import apply_contact_change, claim_callback, lookup_unionid
from zhongtai.integrations.wecom.crypto import WeComCrypto
from zhongtai.integrations.wecom.directory import ExternalContactDirectory
from zhongtai.integrations.wecom.errors import (
    WeComCallbackError,
    WeComMessageInvalid,
    WeComSignatureInvalid,
    WeComTimestampStale,
    WeComUnavailable,
)
from zhongtai.integrations.wecom.messages import ExternalContactChanged, parse_event
from zhongtai.integrations.wecom.settings import WeComSettings
from zhongtai.members.pii import cipher_for

router = api_router(tags=["wecom"])
MAX_BODY = 64 * 1024


class WeComCallbackRefused(DomainError):
    slug = "wecom-callback-refused"
    status = 403
    title = "The WeCom callback was refused"


class WeComUnreachable(DomainError):
    slug = "wecom-unavailable"
    status = 503
    title = "WeCom could not be asked; retry later"


def _crypto(request: Request) -> WeComCrypto:
    config: WeComSettings = request.app.state.wecom
    if not config.callbacks_configured:
        raise NotFound("WeCom callbacks are not configured.")
    assert config.token and config.encoding_aes_key and config.corp_id
    return WeComCrypto(
        config.token.get_secret_value(),
        config.encoding_aes_key.get_secret_value(),
        config.corp_id,
        freshness_window=timedelta(seconds=config.freshness_seconds),
    )


def _refused(error: WeComCallbackError) -> DomainError:
    status = 403 if isinstance(error, WeComSignatureInvalid | WeComTimestampStale) else 400
    refused = WeComCallbackRefused(error.detail, code=error.code)
    refused.status = status  # type: ignore[misc]
    return refused


@router.get("/wecom/callback", response_class=PlainTextResponse, include_in_schema=True)
def verify_callback_url(
    request: Request,
    msg_signature: str = Query(..., max_length=64),
    timestamp: str = Query(..., max_length=16),
    nonce: str = Query(..., max_length=64),
    echostr: str = Query(..., max_length=1024),
) -> PlainTextResponse:
    """WeCom checks the URL when an admin saves it: answer the decrypted ``echostr``."""
    try:
        plain = _crypto(request).verify_url(msg_signature, timestamp, nonce, echostr, utcnow())
    except WeComCallbackError as error:
        raise _refused(error) from error
    return PlainTextResponse(plain)


@router.post("/wecom/callback", response_class=PlainTextResponse)
def receive_callback(
    request: Request,
    msg_signature: str = Query(..., max_length=64),
    timestamp: str = Query(..., max_length=16),
    nonce: str = Query(..., max_length=64),
    body: bytes = Depends(request_body),
    session: Session = Depends(db_session),
    settings: Settings = Depends(app_settings),
) -> PlainTextResponse:
    """A change of a guide's external contacts: bind, or end the binding of, the customer."""
    if len(body) > MAX_BODY:
        raise _refused(WeComMessageInvalid("the callback body is too large"))
    crypto = _crypto(request)
    try:
        inner = crypto.open_callback(msg_signature, timestamp, nonce, body, utcnow())
        event = parse_event(inner)
    except WeComCallbackError as error:
        raise _refused(error) from error
    key = WeComCrypto.replay_key(timestamp, nonce, msg_signature)
    if not claim_callback(session, key, at=utcnow()):
        return PlainTextResponse("success")  # applied before (or by a copy that just was)
    if isinstance(event, ExternalContactChanged):
        directory: ExternalContactDirectory | None = request.app.state.wecom_directory
        try:
            unionid = lookup_unionid(directory, event)
        except WeComUnavailable as error:
            raise WeComUnreachable(error.detail) from error
        apply_contact_change(session, cipher_for(settings), event, unionid)
    session.flush()
    return PlainTextResponse("success")
