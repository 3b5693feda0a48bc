"""`capture.analyse`: analyse a document without making a job, for quotes.

The same analysis and layout as a captured job, so a quote is priced from exactly what a
real job of that document would carry in job.captured. Analysed the same way too: before
the delivery's transaction, in an isolated worker (`handlers.analyse_submission`).
"""

from __future__ import annotations

import dataclasses

from platen.events.jobs import AnalyseDocument, DocumentAnalysis
from platen.events.system import ErrorReply
from platen.job_capture import handlers, metrics
from platen.job_capture.analysis import Analysis, UnreadableDocument, document_format
from platen.job_capture.domain import Document, refuse_format, too_large
from platen.job_capture.subscriptions import subscribe
from platen.messaging.handling import HandlerContext, outside_transaction

QUOTES = "capture.analyse"


async def analyse_for_quote(query: AnalyseDocument) -> Analysis | str:
    """What the document is, or why it cannot be quoted."""
    refused = too_large(len(query.document), handlers.max_document_bytes()) or refuse_format(
        document_format(query.document), "api"
    )
    if refused is not None:
        # Refused as a job from the API would be: a quote is for a job one could submit.
        return refused
    try:
        # Quotes come from no user: all share one owner's worker, so a flood of them
        # cannot hold up captures.
        with metrics.analysing():
            return await handlers.analyse(query.document, QUOTES)
    except UnreadableDocument as exc:
        return str(exc)


@subscribe.query(AnalyseDocument)
async def on_analyse(ctx: HandlerContext, query: AnalyseDocument) -> DocumentAnalysis | ErrorReply:
    outcome = ctx.prepared if ctx.prepared is not None else await analyse_for_quote(query)
    if not isinstance(outcome, Analysis):
        return ErrorReply(error=str(outcome))
    doc = Document.laid_out(
        outcome, duplex=query.duplex, number_up=query.number_up, color_mode=query.color_mode
    )
    ctx.log.info("document analysed for a quote", pages=doc.pages, sides=doc.sides)
    return DocumentAnalysis(**dataclasses.asdict(doc))


outside_transaction(on_analyse, analyse_for_quote)
