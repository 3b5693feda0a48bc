"""Money in the contract: Decimal in Python, a string in JSON, never a float."""

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema


def _no_float(value: Any) -> Any:
    # A float has already lost the amount the sender meant (0.1 is not 0.1), so the
    # contract refuses it instead of guessing.
    if isinstance(value, float):
        raise ValueError("money must be a decimal string, not a float")
    if isinstance(value, bool):  # bool is an int in Python, but true is not an amount
        raise ValueError("money must be a decimal string, not a boolean")
    if isinstance(value, str | int | Decimal):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not an amount") from None
        if not amount.is_finite():
            raise ValueError("money must be a finite amount")
        return amount
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="json"),
    # The schema describes what travels (integrators read it in docs/asyncapi.yaml), not
    # every input the validator tolerates.
    WithJsonSchema(
        {"type": "string", "description": 'a decimal amount, e.g. "4.70"', "examples": ["4.70"]}
    ),
]

CENT = Decimal("0.01")
