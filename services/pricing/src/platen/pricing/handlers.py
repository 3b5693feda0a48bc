"""Pricing's message handlers: load through `ctx.store`, ask the domain, emit. No SQL."""

from __future__ import annotations

from datetime import datetime

from platen.events.accounts import UserGroupsSet
from platen.events.jobs import JobCaptured, JobDenied, JobPriced, SideGroup
from platen.events.printers import (
    AddPrinter,
    CostModel,
    PolicyView,
    PrinterView,
    Quote,
    QuoteJob,
    SetCostModel,
    SetPolicy,
    SetPrinterGroups,
    ShowPrinter,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN
from platen.pricing.domain import Assessment, Job, assess, needs_question, question
from platen.pricing.store import Store
from platen.pricing.subscriptions import subscribe

SERVICE = "pricing"


async def _assess(
    store: Store, printer: str, at: datetime, job: Job, user: str | None
) -> tuple[int, Assessment] | None:
    """The one path for jobs and quotes: the schedule in effect at `at`, the policies of
    the printer and its groups, the user's groups."""
    schedule = await store.schedule_at(printer, at)
    if schedule is None:
        return None
    version, model = schedule
    policies = [
        (f"{p.scope} {p.target} policy", p.policy) for p in await store.policies_for(printer)
    ]
    groups = await store.user_groups(user)
    return version, assess(model, policies, job, printer=printer, user_groups=groups)


def _not_set_up(printer: str) -> str:
    return f"printer {printer!r} is not set up for charging"


@subscribe.event(JobCaptured)
async def on_job_captured(ctx: HandlerContext, event: JobCaptured) -> None:
    job_id = str(event.job_id)
    log = ctx.log.bind(job_id=job_id)
    if event.identity == "trusted":
        log = log.bind(identity="trusted")
    # A job.captured without side groups (an integrator's, or an old analysis) counts
    # each page as one grayscale side of unknown paper, as the version 1 upcaster does.
    groups = event.side_groups or [SideGroup(paper="unknown", color=False, count=event.pages)]
    job = Job.of(groups, event.copies, event.duplex)
    result = await _assess(ctx.store, event.printer, event.captured_at, job, event.user)
    denied = _not_set_up(event.printer) if result is None else result[1].verdict.denied
    if result is None or denied:
        log.info("job denied", printer=event.printer, reason=denied)
        await ctx.emit(
            JobDenied(
                job_id=event.job_id,
                user=event.user,
                printer=event.printer,
                document_name=event.document_name,
                reason=denied or _not_set_up(event.printer),
                denied_by=SERVICE,
            ),
            correlation_id=job_id,
        )
        return
    version, assessment = result
    priced, verdict = assessment.priced, assessment.verdict
    confirm, messages = verdict.confirm, list(verdict.messages)
    if needs_question(event):
        # Nothing proved the user sent it: they confirm it, or it never prints.
        confirm = True
        messages.insert(0, question(event.document_name, event.origin_host, event.captured_at))
    log.info(
        "job priced",
        cost=str(priced.cost),
        sides=priced.sides,
        color_sides=priced.color_sides,
        copies=event.copies,
        schedule_version=version,
        confirm=confirm,
        identity=event.identity,
    )
    await ctx.emit(
        JobPriced(
            job_id=event.job_id,
            user=event.user,
            printer=event.printer,
            document_name=event.document_name,
            sides=priced.sides,
            copies=event.copies,
            cost=priced.cost,
            color_sides=priced.color_sides,
            grayscale_sides=priced.grayscale_sides,
            duplex=event.duplex,
            schedule_version=version,
            breakdown=list(priced.breakdown),
            confirm=confirm,
            messages=messages,
        ),
        correlation_id=job_id,
    )


@subscribe.query(QuoteJob)
async def on_quote(ctx: HandlerContext, query: QuoteJob) -> Quote | ErrorReply:
    job = Job.of(query.side_groups, query.copies, query.duplex)
    now = await ctx.store.now()
    result = await _assess(ctx.store, query.printer, now, job, query.user)
    if result is None:
        return ErrorReply(error=_not_set_up(query.printer))
    version, assessment = result
    priced, verdict = assessment.priced, assessment.verdict
    return Quote(
        printer=query.printer,
        cost=priced.cost,
        schedule_version=version,
        sides=priced.sides,
        copies=query.copies,
        color_sides=priced.color_sides,
        grayscale_sides=priced.grayscale_sides,
        duplex=query.duplex,
        breakdown=list(priced.breakdown),
        denied=verdict.denied,
        confirm=verdict.confirm,
        messages=list(verdict.messages),
    )


@subscribe.command(AddPrinter, senders=ADMIN)
async def on_add_printer(ctx: HandlerContext, cmd: AddPrinter) -> PrinterView:
    current = await ctx.store.latest_schedule(cmd.name)
    model = (
        CostModel(page=cmd.price_per_page)
        if current is None
        else current[1].model_copy(update={"page": cmd.price_per_page})
    )
    version = await ctx.store.add_schedule(cmd.name, model)
    ctx.log.info(
        "printer price set",
        printer=cmd.name,
        price_per_page=str(cmd.price_per_page),
        version=version,
    )
    view = await printer_view(ctx.store, cmd.name)
    assert view is not None
    return view


@subscribe.command(SetCostModel, senders=ADMIN)
async def on_set_cost_model(ctx: HandlerContext, cmd: SetCostModel) -> PrinterView:
    version = await ctx.store.add_schedule(cmd.name, cmd.model)
    ctx.log.info("printer cost model set", printer=cmd.name, version=version)
    view = await printer_view(ctx.store, cmd.name)
    assert view is not None
    return view


@subscribe.command(SetPrinterGroups, senders=ADMIN)
async def on_set_printer_groups(
    ctx: HandlerContext, cmd: SetPrinterGroups
) -> PrinterView | ErrorReply:
    if not await ctx.store.set_printer_groups(cmd.name, cmd.groups):
        return ErrorReply(error=f"no printer named {cmd.name!r}")
    ctx.log.info("printer groups set", printer=cmd.name, groups=cmd.groups)
    view = await printer_view(ctx.store, cmd.name)
    assert view is not None
    return view


@subscribe.command(SetPolicy, senders=ADMIN)
async def on_set_policy(ctx: HandlerContext, cmd: SetPolicy) -> PolicyView | ErrorReply:
    if cmd.scope == "printer" and await ctx.store.latest_schedule(cmd.target) is None:
        return ErrorReply(error=f"no printer named {cmd.target!r}")
    await ctx.store.set_policy(cmd.scope, cmd.target, cmd.policy)
    ctx.log.info("policy set", scope=cmd.scope, target=cmd.target)
    return PolicyView(scope=cmd.scope, target=cmd.target, policy=cmd.policy)


async def printer_view(store, printer: str) -> PrinterView | None:
    """A printer as `platenctl printer show` shows it: its current schedule, groups and
    policies (None: no such printer)."""
    schedule = await store.latest_schedule(printer)
    if schedule is None:
        return None
    version, model = schedule
    return PrinterView(
        name=printer,
        price_per_page=model.page,
        schedule_version=version,
        cost_model=model,
        groups=await store.printer_groups(printer),
        policies=await store.policies_for(printer),
    )


@subscribe.query(ShowPrinter)
async def on_show_printer(ctx: HandlerContext, query: ShowPrinter) -> PrinterView | ErrorReply:
    view = await printer_view(ctx.store, query.name)
    return view or ErrorReply(error=f"no printer named {query.name!r}")


@subscribe.event(UserGroupsSet)
async def on_user_groups_set(ctx: HandlerContext, event: UserGroupsSet) -> None:
    if not await ctx.store.set_user_groups(event.login, event.groups, event.revision):
        ctx.log.info("older groups announcement ignored", login=event.login)
        return
    ctx.log.info("user groups copied", login=event.login, groups=event.groups)
