"""A document to print: the demo's, and the simplest one the tests use."""

from __future__ import annotations

import io

import pikepdf


def make_pdf(pages: int, size: tuple[float, float] = (595, 842)) -> bytes:
    """A valid PDF of `pages` blank pages (A4 by default)."""
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=size)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()
