"""One function per `fleet` verb.

Each takes a Context (the parsed options and the three streams), calls the
services, and prints kubectl-style lines. Failures are raised (ApiError,
CliError) and turned into one line by rollouts.cli.main; a verb that fails for
only some of its objects prints those errors itself and exits 1.
"""

import getpass
import os
import time
from dataclasses import dataclass

from rollouts import clock
from rollouts.api import store
from rollouts.api.errors import NotFound
from rollouts.api.kinds import Kind, KindRegistry
from rollouts.api.labels import parse_selector
from rollouts.api.manifests import parse_patch
from rollouts.controllers.family import APPROVAL_KINDS
from rollouts.selectors.approvals import approval_approver, approval_policies_list
from rollouts.services import policies
from rollouts.services.approvals import (
    approval_break_glass,
    approval_request_approve,
    approval_request_reject,
)
from rollouts.services.objects import manifests_apply, object_delete, object_patch
from rollouts.services.runs import run_kind

from . import inputs, listing, printers
from .audit import audit_command
from .credentials import credentials_command, hub_command, kubeconfig_command
from .errors import CliError, format_error
from .freezes import freeze_command
from .health import health_command
from .history import history_command
from .metadata import annotate_command, label_command
from .notifications import notifications_command
from .tokens import tokens_command

POLL_SECONDS = 0.2


@dataclass
class Context:
    """What a verb works with: options as argparse parsed them, and streams
    (`out`/`err` have Django's OutputWrapper `write(line)`)."""

    options: dict
    out: object
    err: object
    stdin: object

    @property
    def actor(self) -> str:
        """Who the audit log names: `--as`, else the OS user."""
        return self.options.get("actor") or os_user()

    def namespace_for(self, kind: Kind) -> str | None:
        """The namespace a verb acts in: '' for cluster-scoped kinds, None for
        all namespaces (-A), else -n or `default`."""
        if not kind.namespaced:
            return ""
        if self.options.get("all_namespaces"):
            return None
        return self.options.get("namespace") or "default"


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return "unknown"


def apply(ctx: Context) -> None:
    """Create or update every object in the files, all or nothing."""
    paths = ctx.options.get("filename") or []
    if not paths:
        raise CliError("must specify one of -f and -k")
    docs = inputs.read_manifests(paths, ctx.stdin)
    if not docs:
        raise CliError("no objects passed to apply")
    dry_run = ctx.options.get("dry_run") == "server"
    for result in manifests_apply(
        docs=docs, actor=ctx.actor, namespace=ctx.options.get("namespace"), via="cli", dry_run=dry_run
    ):
        ctx.out.write(str(result))
        for line in result.plan.lines() if result.plan else []:
            ctx.out.write(line)


def get(ctx: Context) -> None:
    """Print hub objects (or, with --cluster, a member's objects)."""
    registry = KindRegistry()
    groups = inputs.parse_refs(registry, ctx.options["resources"])
    selector = _selector(ctx, groups)
    cluster = ctx.options.get("cluster")
    if cluster:
        store.get(registry.resolve("membercluster"), cluster)
    listings = [_listing(ctx, cluster, kind, names, selector) for kind, names in groups]
    names_given = sum(len(names) for _, names in groups)
    text = listing.render(
        listings,
        output=ctx.options.get("output") or "",
        show_labels=ctx.options.get("show_labels", False),
        all_namespaces=ctx.options.get("all_namespaces", False),
        single=names_given == 1,
    )
    if text:
        ctx.out.write(text)
    elif not names_given and ctx.options.get("output") not in ("yaml", "json"):
        ctx.err.write(_nothing_found(ctx, groups))
    _fail_on([error for x in listings for error in x.missing], ctx)


def _selector(ctx: Context, groups) -> dict | None:
    text = ctx.options.get("selector")
    if not text:
        return None
    if any(names for _, names in groups):
        raise CliError("name cannot be provided when a selector is specified")
    return parse_selector(text)


def _listing(
    ctx: Context, cluster: str | None, kind: Kind, names: list[str], selector
) -> listing.Listing:
    namespace = ctx.namespace_for(kind)
    if names and namespace is None:
        raise CliError("a resource cannot be retrieved by name across all namespaces")
    if cluster:
        return listing.member_listing(cluster, kind, names, namespace, selector)
    return listing.hub_listing(kind, names, namespace, selector)


def _nothing_found(ctx: Context, groups) -> str:
    namespaced = any(kind.namespaced for kind, _ in groups)
    if namespaced and not ctx.options.get("all_namespaces"):
        return f"No resources found in {ctx.options.get('namespace') or 'default'} namespace."
    return "No resources found"


def _fail_on(errors: list, ctx: Context) -> None:
    """Print per-object errors (after whatever succeeded) and exit 1."""
    for error in errors:
        ctx.err.write(format_error(error))
    if errors:
        raise SystemExit(1)


def delete(ctx: Context) -> None:
    """Delete objects by name or by the manifests in -f files; each object is
    its own transaction, so one missing name does not stop the others."""
    errors = []
    for kind, name, namespace in _delete_targets(ctx):
        try:
            object_delete(kind=kind, name=name, namespace=namespace, actor=ctx.actor)
        except NotFound as exc:
            if not ctx.options.get("ignore_not_found"):
                errors.append(exc)
            continue
        ctx.out.write(f'{printers.kind_name(kind)} "{name}" deleted')
    _fail_on(errors, ctx)


def _delete_targets(ctx: Context) -> list[tuple[Kind, str, str]]:
    registry = KindRegistry()
    paths, args = ctx.options.get("filename") or [], ctx.options.get("resources") or []
    if paths and args:
        raise CliError("give either -f FILE or KIND NAME..., not both")
    if paths:
        return [_doc_target(registry, doc, ctx) for doc in inputs.read_manifests(paths, ctx.stdin)]
    groups = inputs.parse_refs(registry, args)
    if any(not names for _, names in groups):
        raise CliError("resource(s) were provided, but no name was specified")
    return [(kind, name, ctx.namespace_for(kind) or "") for kind, names in groups for name in names]


def _doc_target(registry: KindRegistry, doc: dict, ctx: Context) -> tuple[Kind, str, str]:
    kind = registry.for_manifest(doc["apiVersion"], doc["kind"])
    meta = doc.get("metadata") or {}
    namespace = (meta.get("namespace") or ctx.namespace_for(kind) or "") if kind.namespaced else ""
    return kind, str(meta.get("name") or ""), namespace


def patch(ctx: Context) -> None:
    """Merge- or JSON-patch one object, or its status subresource."""
    kind, name = inputs.single_ref(KindRegistry(), ctx.options["resources"], "patch")
    obj, changed = object_patch(
        kind=kind,
        name=name,
        namespace=ctx.namespace_for(kind) or "",
        patch_type=ctx.options.get("type") or "merge",
        patch=parse_patch(_patch_text(ctx)),
        subresource=ctx.options.get("subresource"),
        actor=ctx.actor,
    )
    ctx.out.write(f"{printers.object_name(kind, obj)} patched{'' if changed else ' (no change)'}")


def _patch_text(ctx: Context) -> str:
    text, path = ctx.options.get("patch"), ctx.options.get("patch_file")
    if text is not None and path:
        raise CliError("--patch and --patch-file are mutually exclusive")
    if path:
        return inputs.read_text(path, ctx.stdin)
    if text is None:
        raise CliError("must specify --patch or --patch-file containing the contents of the patch")
    return text


def approve(ctx: Context) -> None:
    """Approve an approval request, as `kubectl fleet approve` does."""
    kind, name = _approval_target(ctx)
    if ctx.options.get("break_glass"):
        _break_glass(ctx, kind, name)
        return
    request, changed = approval_request_approve(
        kind=kind,
        name=name,
        namespace=ctx.namespace_for(kind) or "",
        actor=ctx.actor,
        message=ctx.options.get("message") or "",
        via="cli",
    )
    subject = printers.object_name(kind, request)
    if changed and request.condition_status("Approved") != "True":  # a vote below the policy's quorum
        standing = policies.progress(policies.gate_of(request))
        ctx.out.write(f"{subject}: approval by {ctx.actor} recorded: {standing.text if standing else ''}")
        return
    if changed:
        ctx.out.write(f"{subject} approved")
        return
    approver = approval_approver(request)
    at = clock.rfc3339(approver.at) if approver and approver.at else "an unknown time"
    ctx.out.write(f"{subject} already approved by {approver.who if approver else 'someone'} at {at}")


def _break_glass(ctx: Context, kind: Kind, name: str) -> None:
    """`approve --break-glass`: the first person asks (with --reason), a second one confirms."""
    request, outcome = approval_break_glass(kind=kind, name=name, namespace=ctx.namespace_for(kind) or "",
                                            actor=ctx.actor, reason=ctx.options.get("reason") or "", via="cli")
    subject = printers.object_name(kind, request)
    if outcome == "requested":
        ctx.out.write(f"{subject}: break-glass asked by {ctx.actor}; a second, different approver must confirm "
                      f"it (fleet approve {name} --break-glass)")
    else:
        ctx.out.write(f"{subject} approved by break-glass")


def reject(ctx: Context) -> None:
    """Reject a gate with a reason: the run stops (spec.state Stop)."""
    kind, name = _approval_target(ctx, verb="rejected")
    run = approval_request_reject(kind=kind, name=name, namespace=ctx.namespace_for(kind) or "", actor=ctx.actor,
                                  reason=ctx.options.get("reason") or "", via="cli")
    request = store.get(kind, name, run.namespace)
    ctx.out.write(f"{printers.object_name(kind, request)} rejected: "
                  f"{printers.object_name(run_kind(run.namespace), run)} stopped")


def _approval_target(ctx: Context, verb: str = "approved") -> tuple[Kind, str]:
    registry = KindRegistry()
    args = ctx.options["resources"]
    if len(args) == 1 and "/" not in args[0]:
        default = "approvalrequest" if ctx.options.get("namespace") else "clusterapprovalrequest"
        return registry.resolve(default), args[0]
    kind, name = inputs.single_ref(registry, args, "approve" if verb == "approved" else "reject")
    if kind.kind not in APPROVAL_KINDS:
        raise CliError(f"{printers.kind_name(kind)} cannot be {verb}: name a careq or an areq")
    if not kind.namespaced and ctx.options.get("namespace"):
        raise CliError(f"{kind.kind} is cluster-scoped and does not accept a namespace")
    return kind, name


@dataclass(frozen=True)
class WaitFor:
    """What `wait --for` waits for: a condition with a status, deletion, or
    creation (kubectl's --for=create: the object exists)."""

    condition: str | None  # None: the object is gone (or, with create, there)
    status: str = "True"
    create: bool = False

    @classmethod
    def parse(cls, text: str) -> "WaitFor":
        if text == "delete":
            return cls(None)
        if text == "create":
            return cls(None, create=True)
        kind, _, rest = text.partition("=")
        condition, _, status = rest.partition("=")
        if kind != "condition" or not condition:
            raise CliError(
                f'unrecognized condition: "{text}" (use condition=TYPE[=STATUS], create or delete)'
            )
        return cls(condition, status or "True")

    def met(self, obj) -> bool:
        """kubectl's rules: type and status compare case-insensitively, and a
        condition observed for an older generation does not count."""
        if self.create:
            return obj is not None
        if self.condition is None:
            return obj is None
        for cond in obj.conditions():
            if str(cond.get("type", "")).lower() != self.condition.lower():
                continue
            observed = cond.get("observedGeneration")
            fresh = observed is None or observed == obj.generation
            return fresh and str(cond.get("status", "")).lower() == self.status.lower()
        return False


def wait(ctx: Context) -> None:
    """Poll until every named object meets --for, or the timeout passes."""
    registry = KindRegistry()
    groups = inputs.parse_refs(registry, ctx.options["resources"])
    if any(not names for _, names in groups):
        raise CliError("wait needs the objects to wait for: KIND/NAME or KIND NAME...")
    want = WaitFor.parse(ctx.options["for_"])
    # Real time, not rollouts.clock: a frozen test clock must not make us wait forever.
    deadline = time.monotonic() + inputs.parse_duration(ctx.options.get("timeout") or "30s")
    for kind, names in groups:
        for name in names:
            if not _wait_one(kind, name, ctx.namespace_for(kind) or "", want, deadline):
                raise CliError(f"timed out waiting for the condition on {kind.plural}/{name}")
            ctx.out.write(f"{printers.kind_name(kind)}/{name} condition met")


def _wait_one(kind: Kind, name: str, namespace: str, want: WaitFor, deadline: float) -> bool:
    while True:
        obj = store.find(kind, name, namespace)
        if obj is None and want.condition is not None:
            raise NotFound(kind.resource, name)
        if want.met(obj):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(POLL_SECONDS, left))


def demo(ctx: Context) -> None:
    """Load the tutorial's fleet (idempotent: a second run says `unchanged`)."""
    from rollouts.demo import load_demo

    for result in load_demo(actor=ctx.options.get("actor") or "demo"):
        ctx.out.write(str(result))


def engine(ctx: Context) -> None:
    """Run the rollout engine loop (rollouts.engine.loop) in this process,
    with the sync sessions of every KubeFleet hub connection beside it."""
    import threading

    from rollouts.engine.loop import engine_main

    if ctx.options.get("once"):
        engine_main(ctx.options)
        return
    stop = threading.Event()
    hubs_thread = _hubs_thread_start(stop)
    try:
        engine_main(ctx.options, stop=stop)
    finally:
        stop.set()
        hubs_thread.join(timeout=10)


def _hubs_thread_start(stop):
    """Embedded mode's stand-in for the Celery `hubs` worker: hub mirrors kept current."""
    import threading

    from rollouts.mirror import hubs_keep_synced

    thread = threading.Thread(target=hubs_keep_synced, kwargs={"stop": stop}, name="fleet-hubs", daemon=True)
    thread.start()
    return thread


def serve(ctx: Context) -> None:
    """The embedded mode: the engine loop and the hub syncs in threads beside
    the web server (HTTPS with --tls-cert/--tls-key)."""
    import threading

    from django.core.management import call_command

    from rollouts.engine.loop import engine_main

    tls = _tls_endpoint(ctx.options["addrport"], ctx.options.get("tls_cert"), ctx.options.get("tls_key"))
    stop = threading.Event()
    engine_thread = threading.Thread(target=engine_main, kwargs={"stop": stop}, name="fleet-engine", daemon=True)
    engine_thread.start()
    hubs_thread = _hubs_thread_start(stop)
    try:
        if tls:
            from daphne.cli import (
                CommandLineInterface,  # Twisted's TLS: only this verb pays its import
            )

            CommandLineInterface().run(["-e", tls, "fleetui.asgi:application"])
        else:
            call_command("runserver", ctx.options["addrport"], use_reloader=False)
    finally:
        stop.set()
        from rollouts.engine import wakeup

        wakeup.notify()
        engine_thread.join(timeout=10)
        hubs_thread.join(timeout=10)


def _tls_endpoint(addrport: str, cert: str | None, key: str | None) -> str:
    """Daphne's HTTPS endpoint for --tls-cert/--tls-key ('' for neither):
    kubectl sends its token only over TLS (docs/kube-api.md). Twisted
    endpoint strings escape ':' and '='."""
    if not (cert or key):
        return ""
    if not (cert and key):
        raise CliError("give both --tls-cert and --tls-key")
    for path in (cert, key):
        if not os.path.isfile(path):
            raise CliError(f"cannot read {path}: no such file")
    host, _, port = addrport.rpartition(":")
    if not port.isdigit():
        raise CliError(f"ADDR:PORT: {addrport!r} names no port")

    def escaped(text: str) -> str:
        return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")

    return (f"ssl:{port}:interface={escaped((host or '127.0.0.1').strip('[]'))}:"
            f"privateKey={escaped(os.path.abspath(key))}:certKey={escaped(os.path.abspath(cert))}")


def api_resources(ctx: Context) -> None:
    """List every kind the hub serves and the names it answers to."""
    rows = [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]]
    for kind in KindRegistry().kinds:
        rows.append(
            [
                kind.plural,
                ",".join(kind.short_names),
                kind.api_version,
                str(kind.namespaced).lower(),
                kind.kind,
            ]
        )
    ctx.out.write(printers.format_table(rows))


def policies_command(ctx: Context) -> None:
    """List the approval policies: what each protects and what it asks."""
    rows = [["SCOPE", "NAME", "PROTECTS", "GROUPS", "QUORUM", "FOUR-EYES", "SOURCE"]]
    for policy in approval_policies_list():
        protects = (f"{policy.strategy_name}/{policy.stage}/{policy.gate}"
                    if policy.scope == policy.Scope.GATE else policy.target)
        rows.append([policy.scope, policy.name or "-", protects, ",".join(policy.groups) or "-", str(policy.quorum),
                     "yes" if policy.four_eyes else "no", policy.source])
    ctx.out.write(printers.format_table(rows) if len(rows) > 1 else "No approval policies.")


VERBS = {
    "apply": apply,
    "get": get,
    "delete": delete,
    "patch": patch,
    "label": label_command,
    "annotate": annotate_command,
    "approve": approve,
    "reject": reject,
    "health": health_command,
    "wait": wait,
    "demo": demo,
    "engine": engine,
    "serve": serve,
    "api-resources": api_resources,
    "audit": audit_command,
    "hub": hub_command,
    "kubeconfig": kubeconfig_command,
    "policies": policies_command,
    "history": history_command,
    "credentials": credentials_command,
    "freeze": freeze_command,
    "notifications": notifications_command,
    "tokens": tokens_command,
}
