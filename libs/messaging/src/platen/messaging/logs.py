"""Structured JSON logs. A line about a job carries its `job_id` (bound per message)."""

from __future__ import annotations

import logging
import uuid

from platen.logs import configure_logging as _configure_logging


def configure_logging(service: str, level: str = "INFO") -> None:
    """A service's logs (`platen.logs`), without httpx's own lines."""
    _configure_logging(service, level)
    quiet_http_clients()


def quiet_http_clients() -> None:
    """httpx logs every management-API request at INFO, unstructured: about ten lines a
    user while notification reconciles identities. Platen logs what it did itself."""
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def is_reply(message_type: str | None) -> bool:
    """Whether messages of this type answer a request: their correlation id is the id of
    the request they answer, not a job's or an account's."""
    return message_type is not None and (message_type == "error" or message_type.endswith(".reply"))


def correlation_fields(
    correlation_id: str | None, message_type: str | None = None, message: object = None
) -> dict[str, str]:
    """What to bind on the log lines about one message, so a line about a job always
    carries `job_id` and nothing else does.

    A message's own `job_id` wins. Otherwise the correlation id says what the message
    concerns (the contract: a job's id, which is a UUID, or an account's, such as
    `personal:alice`), except on a reply, where it names the request answered.
    """
    job_id = getattr(message, "job_id", None)
    if job_id is not None:
        return {"job_id": str(job_id)}
    if not correlation_id:
        return {}
    if is_reply(message_type):
        return {"request_id": correlation_id}
    if _is_uuid(correlation_id):
        return {"job_id": correlation_id}
    return {"account_id": correlation_id}
