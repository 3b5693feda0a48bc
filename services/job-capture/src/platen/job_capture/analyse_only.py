"""`capture.analyse`: analyse a document without making a job, for quotes.

The same analysis and layout as a captured job, so a quote is priced from exactly what a
real job of that document would carry in job.captured.
"""

from __future__ import annotations

import asyncio

from platen.events.jobs import AnalyseDocument, DocumentAnalysis
from platen.events.system import ErrorReply
from platen.job_capture.analysis import UnreadableDocument, analyse
from platen.job_capture.domain import too_large
from platen.job_capture.handlers import MAX_DOCUMENT_BYTES
from platen.job_capture.layout import layout
from platen.messaging.handling import HandlerContext


async def on_analyse(ctx: HandlerContext, query: AnalyseDocument) -> DocumentAnalysis | ErrorReply:
    if (refused := too_large(len(query.document), MAX_DOCUMENT_BYTES)) is not None:
        return ErrorReply(error=refused)
    try:
        analysis = await asyncio.to_thread(analyse, query.document)
    except UnreadableDocument as exc:
        return ErrorReply(error=str(exc))
    sheet = layout(
        analysis, duplex=query.duplex, number_up=query.number_up, color_mode=query.color_mode
    )
    ctx.log.info("document analysed for a quote", pages=analysis.pages, sides=sheet.sides)
    return DocumentAnalysis(
        format=analysis.format,
        pages=analysis.pages,
        color_pages=list(analysis.color_pages),
        paper_sizes=dict(sheet.paper_sizes),
        sides=sheet.sides,
        sheets=sheet.sheets,
        side_groups=[{"paper": p, "color": c, "count": n} for p, c, n in sheet.side_groups],
        analysis_ms=analysis.analysis_ms,
    )
