"""`capture.analyse`: analyse a document without making a job, for quotes.

The same analysis and layout as a captured job, so a quote is priced from exactly what a
real job of that document would carry in job.captured.
"""

from __future__ import annotations

import asyncio
import dataclasses

from platen.events.jobs import AnalyseDocument, DocumentAnalysis
from platen.events.system import ErrorReply
from platen.job_capture.analysis import UnreadableDocument, analyse
from platen.job_capture.domain import Document, too_large
from platen.job_capture.handlers import MAX_DOCUMENT_BYTES
from platen.job_capture.subscriptions import subscribe
from platen.messaging.handling import HandlerContext


@subscribe.query(AnalyseDocument)
async def on_analyse(ctx: HandlerContext, query: AnalyseDocument) -> DocumentAnalysis | ErrorReply:
    if (refused := too_large(len(query.document), MAX_DOCUMENT_BYTES)) is not None:
        return ErrorReply(error=refused)
    try:
        analysis = await asyncio.to_thread(analyse, query.document)
    except UnreadableDocument as exc:
        return ErrorReply(error=str(exc))
    doc = Document.laid_out(
        analysis, duplex=query.duplex, number_up=query.number_up, color_mode=query.color_mode
    )
    ctx.log.info("document analysed for a quote", pages=doc.pages, sides=doc.sides)
    return DocumentAnalysis(**dataclasses.asdict(doc))
