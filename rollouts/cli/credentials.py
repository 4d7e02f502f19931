"""`fleet hub …` and `fleet kubeconfig …`: what the admin's Hub connections
and Member credentials pages do, from the command line, through the same
services (rollouts.mirror.actions) and so with the same audit events.
Kubeconfigs are read from a file or stdin and never printed.
`fleet credentials rotate` re-encrypts them all with the first
FLEET_CREDENTIALS_KEY."""

from rollouts import mirror
from rollouts.api.errors import BadRequest, NotFound
from rollouts.models.connections import HubConnection, MemberCredential

from . import printers


def _kubeconfig_text(ctx) -> str:
    path = ctx.options.get("kubeconfig") or ""
    if not path:
        return ""
    if path == "-":
        return ctx.stdin.read()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise BadRequest(f"cannot read the kubeconfig {path}: {exc.strerror}") from None


def _save(ctx, model, what: str) -> None:
    from rollouts.mirror.actions import HubRefused, credential_save

    name = ctx.options["name"]
    credential = model.objects.filter(name=name).first() or model(name=name)
    created = credential.pk is None
    try:
        credential_save(credential, kubeconfig=_kubeconfig_text(ctx), context=ctx.options.get("context"),
                        actor=ctx.actor)
    except HubRefused as exc:
        raise BadRequest(f"{what} {name}: {str(exc).removeprefix(f'{name}: ')}") from None
    ctx.out.write(f"{what} {name} {'created' if created else 'configured'}")


def _get(model, name: str, what: str):
    found = model.objects.filter(name=name).first()
    if found is None:
        raise NotFound(what, name)
    return found


def hub_command(ctx) -> None:
    """hub add|list|delete."""
    action = ctx.options["action"]
    if action == "list":
        rows = [["NAME", "HEALTH", "LAST-SYNC", "MIRRORED", "LAST-ERROR"]]
        for hub in mirror.hub_connection_rows():
            last = printers.age(hub.last_sync) + " ago" if hub.last_sync else "never"
            rows.append([hub.name, hub.health, last, str(hub.mirrored), hub.last_error or "-"])
        ctx.out.write(printers.format_table(rows) if len(rows) > 1 else "No hub connections.")
    elif action == "add":
        _require_name(ctx, "hub add")
        _save(ctx, HubConnection, "hub")
    else:
        _require_name(ctx, "hub delete")
        from rollouts.mirror.actions import hub_connection_delete

        count = hub_connection_delete(connection=_get(HubConnection, ctx.options["name"], "hub"), actor=ctx.actor)
        ctx.out.write(f"hub {ctx.options['name']} deleted ({count} mirrored objects removed)")


def kubeconfig_command(ctx) -> None:
    """kubeconfig add|list|delete: member credentials."""
    action = ctx.options["action"]
    if action == "list":
        rows = [["NAME", "CONTEXT", "AGE"]]
        for credential in MemberCredential.objects.order_by("name"):
            rows.append([credential.name, credential.context or "(current)", printers.age(credential.created_at)])
        ctx.out.write(printers.format_table(rows) if len(rows) > 1 else "No member credentials.")
    elif action == "add":
        _require_name(ctx, "kubeconfig add")
        _save(ctx, MemberCredential, "kubeconfig")
    else:
        _require_name(ctx, "kubeconfig delete")
        from rollouts.mirror.actions import member_credential_delete

        member_credential_delete(credential=_get(MemberCredential, ctx.options["name"], "kubeconfig"),
                                 actor=ctx.actor)
        ctx.out.write(f"kubeconfig {ctx.options['name']} deleted")


def _require_name(ctx, verb: str) -> None:
    if not ctx.options.get("name"):
        raise BadRequest(f"fleet {verb} needs a NAME")


def credentials_command(ctx) -> None:
    """credentials rotate: one line per credential re-encrypted; those no key
    reads go to stderr and the exit code is 1."""
    from rollouts.mirror.actions import credentials_rotate

    rotation = credentials_rotate(actor=ctx.actor)
    for label in rotation.reencrypted:
        ctx.out.write(f"{label} re-encrypted")
    for label in rotation.unreadable:
        ctx.err.write(f"{label}: no FLEET_CREDENTIALS_KEY decrypts it; enter its kubeconfig again")
    if not rotation.reencrypted and not rotation.unreadable:
        ctx.out.write("No stored kubeconfigs.")
    if rotation.unreadable:
        raise SystemExit(1)
