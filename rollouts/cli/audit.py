"""`fleet audit verify`: check the audit log's hash chain (docs/audit.md)."""

from rollouts.services.audit import audit_verify


def audit_verify_command(ctx) -> None:
    """Print `audit log intact: N events, head HASH`, or the first broken
    link on stderr and exit 1."""
    verdict = audit_verify()
    if verdict.intact:
        ctx.out.write(f"audit log intact: {verdict.count} events, head {verdict.head}")
        return
    ctx.err.write(f"audit log broken at seq {verdict.seq} (event id {verdict.id}): {verdict.broken}")
    ctx.err.write(f"the {verdict.count} events before it are intact (head {verdict.head})")
    raise SystemExit(1)
