"""How a message can fail the contract. Without pydantic, so that the desktop client's
codec (`platen.client.wire`) raises the very classes the server's registry does."""

from __future__ import annotations


class ContractError(ValueError):
    """A message that does not fit the contract. Retrying it cannot help."""


class UnknownMessageType(ContractError):
    pass


class UnsupportedVersion(ContractError):
    pass


class MalformedMessage(ContractError):
    pass
