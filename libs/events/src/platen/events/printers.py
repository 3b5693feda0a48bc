"""The printer aggregate: what pricing knows about each printer."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from platen.events.base import Message, PrinterName
from platen.events.money import Money
from platen.events.registry import register


@register
class AddPrinter(Message):
    """Command to pricing (`pricing.printer.add`): create or update a printer's price."""

    message_type: ClassVar[str] = "pricing.printer.add"
    name: PrinterName
    price_per_page: Money = Field(ge=0, le=10_000)


@register
class ShowPrinter(Message):
    message_type: ClassVar[str] = "pricing.printer.show"
    name: PrinterName


@register
class PrinterView(Message):
    message_type: ClassVar[str] = "pricing.printer"
    name: str
    price_per_page: Money
