"""Messages to and from AMQP: the body is JSON, the envelope is AMQP properties."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, DeliveryMode

from platen.events.base import HEADER_VERSION, Envelope, Message
from platen.events.registry import ContractError, decode

HEADER_ERROR = "platen-error"
HEADER_QUEUE = "platen-queue"
HEADER_MARKS = "platen-marks"  # see platen.messaging.marks


def build(
    *,
    body: bytes,
    message_type: str,
    schema_version: int,
    producer: str,
    message_id: str,
    correlation_id: str | None,
    occurred_at: datetime,
    expiration_ms: int | None = None,
    reply_to: str | None = None,
    marks: str | None = None,
    user_id: str | None = None,
) -> aio_pika.Message:
    headers: dict[str, object] = {HEADER_VERSION: schema_version}
    if marks:
        headers[HEADER_MARKS] = marks
    return aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message_id,
        type=message_type,
        app_id=producer,
        correlation_id=correlation_id,
        timestamp=occurred_at,
        headers=headers,
        expiration=expiration_ms / 1000 if expiration_ms is not None else None,
        reply_to=reply_to,
        user_id=user_id,
    )


def envelope_for(message: Message, producer: str, correlation_id: str | None = None) -> Envelope:
    return Envelope(
        message_type=message.message_type,
        schema_version=message.schema_version,
        producer=producer,
        correlation_id=correlation_id,
    )


def from_amqp(raw: AbstractIncomingMessage) -> tuple[Envelope, Message]:
    """Decode an incoming message; raises ContractError when it does not fit the contract."""
    headers = raw.headers or {}
    version = headers.get(HEADER_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ContractError(f"missing or invalid {HEADER_VERSION} header: {version!r}")
    if not raw.message_id:
        raise ContractError("message has no message_id")
    body = decode(raw.type, version, raw.body)
    ts = raw.timestamp or datetime.now(UTC)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    envelope = Envelope(
        message_type=raw.type or "",
        schema_version=version,
        producer=raw.app_id or "",
        correlation_id=raw.correlation_id,
        message_id=raw.message_id,
        occurred_at=ts,
    )
    return envelope, body
