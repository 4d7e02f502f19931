"""`fleet audit verify` and `fleet audit seal --stale`: check the audit log's
hash chain, and seal on purpose what was left unsealed (docs/audit.md)."""

from django.conf import settings

from rollouts.services.audit import audit_seal, audit_verify


def audit_command(ctx) -> None:
    """Dispatch `audit verify` / `audit seal`."""
    if ctx.options.get("action") == "seal":
        audit_seal_command(ctx)
    else:
        audit_verify_command(ctx)


def audit_verify_command(ctx) -> None:
    """Print `audit log intact: N events, head HASH`; else what is wrong on
    stderr (the first broken link, rows left unsealed, time going backwards)
    and exit 1."""
    verdict = audit_verify()
    if verdict.intact:
        ctx.out.write(f"audit log intact: {verdict.count} events, head {verdict.head}")
        return
    if verdict.chain_intact:
        ctx.out.write(f"audit log chain intact: {verdict.count} events, head {verdict.head}")
    else:
        ctx.err.write(f"audit log broken at seq {verdict.seq} (event id {verdict.id}): {verdict.broken}")
        ctx.err.write(f"the {verdict.count} events before it are intact (head {verdict.head})")
    if verdict.stale_count:
        ids = ", ".join(str(i) for i in verdict.stale)
        more = " …" if verdict.stale_count > len(verdict.stale) else ""
        ctx.err.write(f"{verdict.stale_count} events left unsealed for more than "
                      f"{settings.FLEET_AUDIT_SEAL_WITHIN_SECONDS:g} s, not sealed (event ids {ids}{more}): "
                      "written outside the application, or their seal failed. Look at them; "
                      "`fleet audit seal --stale` adds them to the chain.")
    for line in verdict.backwards:
        ctx.err.write(f"time goes backwards: {line}")
    raise SystemExit(1)


def audit_seal_command(ctx) -> None:
    """Seal every unsealed event, also those left unsealed too long (only
    with --stale: a person's decision after looking at them)."""
    if not ctx.options.get("stale"):
        ctx.err.write("audit seal: pass --stale to seal events left unsealed too long (recent ones are "
                      "sealed by themselves)")
        raise SystemExit(2)
    ctx.out.write(f"sealed {audit_seal(stale=True)} events")
