"""Low-balance and denial notices in the site's words: on the user's desktop, and by email
to those who asked for it.

A notice's template (`platenctl notice template set`) gives its text; the desktop gets
that text only when an administrator changed it (the built-in one the client says in the
user's language). A mail is queued in the table `mail_outbox`, in the transaction that
handled the event, under the event's id: a redelivered event queues nothing twice, and a
mail server that is down loses nothing (`mail.MailSender` sends it later).
"""

from __future__ import annotations

import uuid

from platen.events.accounts import UserContactSet
from platen.events.base import Message
from platen.events.notices import (
    NoticeTemplates,
    NoticeTemplateView,
    SetNoticeTemplate,
    ShowNoticeTemplates,
)
from platen.events.system import ErrorReply
from platen.messaging.handling import HandlerContext
from platen.messaging.senders import ADMIN
from platen.notification import mail
from platen.notification.domain import (
    PLACEHOLDERS,
    Contact,
    NoticeTemplate,
    default_template,
    template_problem,
)
from platen.notification.sending import send
from platen.notification.subscriptions import subscribe


async def tell(
    ctx: HandlerContext,
    name: str,
    login: str,
    values: dict[str, object],
    notice: Message,
    job_id: uuid.UUID | None = None,
) -> None:
    """Send `notice` (its text set from template `name` when the site changed it) to
    `login`'s desktop, and queue the mail when the site and the user want one."""
    template = await ctx.store.notice_template(name)
    subject, body = template.render({"login": login, **values})
    if template.custom:
        notice = notice.model_copy(update={"text": body})
    await send(ctx, login, notice, job_id)
    if not mail.enabled():
        return
    contact = await ctx.store.contact(login)
    if contact is None or not contact.wants_mail():
        return
    assert contact.email is not None
    source = f"{ctx.envelope.message_id}:{name}"
    if await ctx.store.queue_mail(source, login, contact.email, subject, body, job_id):
        about = {"job_id": str(job_id)} if job_id else {}
        ctx.log.info("mail queued", user=login, notice=name, **about)
        ctx.after_commit(mail.SENDER.wake)


@subscribe.event(UserContactSet)
async def on_contact_set(ctx: HandlerContext, event: UserContactSet) -> None:
    contact = Contact(event.login, event.email, event.email_notices, event.revision)
    if await ctx.store.set_contact(contact):
        ctx.log.info("contact kept", user=event.login, email_notices=event.email_notices)
    else:
        ctx.log.info("older contact ignored", user=event.login, revision=event.revision)


@subscribe.command(SetNoticeTemplate, senders=ADMIN)
async def on_set_template(
    ctx: HandlerContext, cmd: SetNoticeTemplate
) -> NoticeTemplates | ErrorReply:
    if cmd.reset:
        template = default_template(cmd.name)
    else:
        current = await ctx.store.notice_template(cmd.name)
        template = NoticeTemplate(
            cmd.name, cmd.subject or current.subject, cmd.body or current.body, custom=True
        )
        if problem := template_problem(cmd.name, template.subject, template.body):
            return ErrorReply(error=problem)
    await ctx.store.save_notice_template(template)
    ctx.log.info("notice template set", notice=cmd.name, reset=cmd.reset)
    return await _templates(ctx)


@subscribe.query(ShowNoticeTemplates)
async def on_show_templates(ctx: HandlerContext, query: ShowNoticeTemplates) -> NoticeTemplates:
    return await _templates(ctx)


async def _templates(ctx: HandlerContext) -> NoticeTemplates:
    """Each notice's template in use, with the placeholders it may name."""
    templates = [await ctx.store.notice_template(name) for name in PLACEHOLDERS]
    return NoticeTemplates(
        templates=[
            NoticeTemplateView(placeholders=list(PLACEHOLDERS[t.name]), **_fields(t))
            for t in templates
        ]
    )


def _fields(t: NoticeTemplate) -> dict:
    return {"name": t.name, "subject": t.subject, "body": t.body, "custom": t.custom}
