"""`fleet notifications …`: the team channels an admin manages in the admin,
from the command line, through the same services (and so the same audit
Events). A webhook's signing secret is printed once, at create."""

from rollouts import models as m
from rollouts import notifier
from rollouts.api.errors import BadRequest, NotFound
from rollouts.selectors import notifications as reads
from rollouts.services.deliveries import delivery_resend, delivery_test
from rollouts.services.notifications import subscription_create, subscription_delete, target_display

from . import printers


def _team(name: str) -> m.Subscription:
    found = m.Subscription.objects.filter(owner__isnull=True, name=name).first()
    if found is None:
        raise NotFound("notification channel", name)
    return found


def _name(ctx, verb: str) -> str:
    if not ctx.options.get("name"):
        raise BadRequest(f"fleet notifications {verb} needs a NAME")
    return ctx.options["name"]


def _events(text: str | None) -> list[str]:
    return [e.strip() for e in (text or "").split(",") if e.strip()]


def _create(ctx) -> None:
    options = ctx.options
    if not options.get("target"):
        raise BadRequest("target: fleet notifications create needs --target URL or address")
    sub, secret = subscription_create(
        name=_name(ctx, "create"), channel=options.get("channel") or "webhook", target=options["target"],
        placement=options.get("placement") or "", label_selector=options.get("selector") or "",
        run_name=options.get("run") or "", events_=_events(options.get("events")), actor=ctx.actor, via="cli")
    ctx.out.write(f"notification channel {sub.name} created")
    if secret:
        ctx.out.write(f"signing secret (shown once, stored encrypted): {secret}")


def _list(ctx) -> None:
    rows = [["NAME", "CHANNEL", "TARGET", "ONLY", "EVENTS", "DELIVERED", "PENDING", "FAILED"]]
    for sub in reads.subscription_rows(user=None, include_team=True):
        only = " ".join(f"{k}={v}" for k, v in (("placement", sub.placement), ("run", sub.run_name),
                                                   ("labels", sub.label_selector)) if v) or "-"
        rows.append([sub.name + ("" if sub.enabled else " (disabled)"), sub.channel, sub.shown_target, only,
                     ",".join(sub.events) or "all", str(sub.delivered), str(sub.pending), str(sub.failed)])
    ctx.out.write(printers.format_table(rows) if len(rows) > 1 else "No notification channels.")


def _deliveries(ctx) -> None:
    sub = _team(ctx.options["name"]) if ctx.options.get("name") else None
    rows = [["ID", "OWED", "EVENT", "CHANNEL", "STATUS", "ATTEMPTS", "RESPONSE", "LAST-ERROR"]]
    for d in reads.delivery_log(subscription_pk=sub.pk if sub else None, limit=50):
        rows.append([str(d.pk), printers.age(d.created_at) + " ago", d.kind, d.subscription.name, d.status,
                     str(d.attempts), f"{d.response_ms} ms" if d.response_ms is not None else "-",
                     d.last_error or "-"])
    ctx.out.write(printers.format_table(rows) if len(rows) > 1 else "No deliveries.")


def _resend(ctx) -> None:
    text = _name(ctx, "resend")
    delivery = m.Delivery.objects.select_related("subscription").filter(pk=int(text) if text.isdigit() else 0).first()
    if delivery is None:
        raise NotFound("delivery", text)
    delivery_resend(delivery=delivery, actor=ctx.actor, via="cli")
    notifier.send_soon([delivery.pk])
    ctx.out.write(f"delivery {delivery.pk} will be sent again")


def _test(ctx) -> None:
    sub = _team(_name(ctx, "test"))
    delivery = delivery_test(subscription=sub, actor=ctx.actor)
    if delivery.status != m.Delivery.Status.DELIVERED:
        ctx.err.write(f"test message to {sub.name} ({target_display(sub.channel, sub.target)}) not delivered: "
                      f"{delivery.last_error}")
        raise SystemExit(1)
    ctx.out.write(f"test message delivered to {sub.name} in {delivery.response_ms} ms")


def notifications_command(ctx) -> None:
    """notifications create|list|delete|test|deliveries|resend."""
    action = ctx.options["action"]
    if action == "delete":
        sub = _team(_name(ctx, "delete"))
        subscription_delete(subscription=sub, actor=ctx.actor, via="cli")
        ctx.out.write(f"notification channel {sub.name} deleted")
        return
    {"create": _create, "list": _list, "deliveries": _deliveries, "resend": _resend, "test": _test}[action](ctx)
