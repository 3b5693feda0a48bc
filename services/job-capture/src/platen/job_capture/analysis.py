"""What a document is: its format and page count. Pure logic over bytes, via pikepdf."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pikepdf


class UnreadableDocument(ValueError):
    """The document cannot be analysed; it must not be printed (free or blind)."""


@dataclass(frozen=True)
class Analysis:
    format: str
    pages: int


def analyse(document: bytes) -> Analysis:
    if not document:
        raise UnreadableDocument("the document is empty")
    if not document.lstrip()[:5].startswith(b"%PDF-"):
        raise UnreadableDocument("unsupported document format (only PDF is accepted)")
    try:
        with pikepdf.open(io.BytesIO(document)) as pdf:
            pages = len(pdf.pages)
            # qpdf silently rebuilds a damaged file, and a truncated one then counts
            # fewer pages than it has: printing or pricing it would be a guess.
            damaged = bool(pdf.get_warnings())
    except pikepdf.PasswordError:
        raise UnreadableDocument("the PDF is password-protected") from None
    except (pikepdf.PikepdfError, ValueError, RuntimeError):
        raise UnreadableDocument("the PDF cannot be read (damaged or not a PDF)") from None
    if damaged:
        raise UnreadableDocument("the PDF is damaged or truncated")
    if pages < 1:
        raise UnreadableDocument("the PDF has no pages")
    return Analysis(format="pdf", pages=pages)
