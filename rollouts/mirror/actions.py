"""What a person does to a mirrored object happens on its hub.

Approving and stopping/resuming are sent to the hub with the connection's
credentials; the answer is mirrored at once (the watch confirms it later)
and the person is recorded in our audit log. Whatever the hub refuses comes
back as HubRefused: an ApiError whose `str()` is one line for the page.
"""

from dataclasses import dataclass

from django.db import transaction

from rollouts import clock, k8s
from rollouts import models as m
from rollouts.api.errors import ApiError
from rollouts.conditions import find_condition
from rollouts.controllers.family import APPROVAL_KINDS, RUN_KINDS
from rollouts.kubeconfig import KubeconfigRefused, kubeconfig_parse
from rollouts.models.connections import HubConnection, MemberCredential, UnreadableCredential
from rollouts.services.events import record

from . import objects
from .kinds import HubKind, hub_kind_of
from .marks import mirror_mark


class HubRefused(ApiError):
    """The hub (or the way to it) refused what a person asked."""

    def __init__(self, message: str, *, code: int = 400):
        super().__init__(" ".join(message.split()))
        self.code = code


def client_for(credential):
    """An ApiClient for a HubConnection or MemberCredential; HubRefused when
    its kubeconfig is missing, unreadable or unusable."""
    try:
        return k8s.client_from_kubeconfig(credential.kubeconfig(), credential.context)
    except (UnreadableCredential, k8s.K8sError) as exc:
        raise HubRefused(f"{credential.name}: {exc}") from None


def _mirror_of(obj, kinds: tuple[str, ...]) -> tuple[HubConnection, HubKind]:
    mark = mirror_mark(obj)
    if mark is None or obj.KIND not in kinds:
        raise HubRefused(f'{obj.KIND} "{obj.name}" is not mirrored from a hub')
    return mark.connection, hub_kind_of(obj)


def _refusal(exc: k8s.K8sError, connection: HubConnection, obj, doing: str) -> HubRefused:
    """One line for the person: who refused what, and why."""
    what = f'{obj.KIND} "{obj.name}"'
    if isinstance(exc, k8s.TemporaryK8sError):
        return HubRefused(f"hub {connection.name} is unreachable, nothing was {doing}: {exc}", code=503)
    if isinstance(exc, k8s.NotFoundError):
        return HubRefused(f"{what} no longer exists on hub {connection.name}; nothing was {doing}", code=404)
    if isinstance(exc, k8s.GoneError):
        return HubRefused(f"{what} is gone from hub {connection.name}; nothing was {doing}", code=410)
    if exc.status == 409:
        return HubRefused(f"hub {connection.name} reported a conflict on {what}, nothing was {doing}; "
                          f"try again: {exc}", code=409)
    if exc.status in (401, 403):
        return HubRefused(f"hub {connection.name} refused: Fleet UI's credentials may not change {what} "
                          f"({exc})", code=exc.status)
    return HubRefused(f"hub {connection.name} refused, nothing was {doing}: {exc}", code=exc.status or 400)


def _hub_call(connection: HubConnection, obj, doing: str, call):
    try:
        return call(client_for(connection))
    except k8s.K8sError as exc:
        raise _refusal(exc, connection, obj, doing) from None


def approval_condition(*, kind: str, generation: int, message: str, now) -> dict:
    """The Approved condition, shaped as the tutorial's approval.json."""
    return {"lastTransitionTime": clock.rfc3339(now), "message": message, "observedGeneration": generation,
            "reason": f"{kind}Approved", "status": "True", "type": "Approved"}


def approve_on_hub(request, *, actor: str, message: str = "", client_address: str = "", via: str = "") -> tuple:
    """Approve a mirrored approval request on its hub, as
    `kubectl patch <kind> <name> --type=merge --subresource=status --patch-file approval.json` does.

    1. GET the request from the hub: its current generation, and whether it
       is approved already (then nothing is sent and (request, False) returns).
    2. Merge-patch its status with the Approved condition (observedGeneration
       = that generation; message = the comment and the approver). A merge
       patch replaces the list whole, so other conditions are sent back as they are.
    3. Mirror the hub's answer and append the audit Event (the person, the
       comment, the client address). Returns (request, True).
    Raises HubRefused (403, 404, 409, 410, unreachable) with one line."""
    connection, hub_kind = _mirror_of(request, APPROVAL_KINDS)
    namespace = request.namespace or None
    live = _hub_call(connection, request, "approved", lambda c: k8s.get_object(
        c, hub_kind.group, _version(connection, hub_kind), hub_kind.plural, request.name, namespace))
    conditions = (live.get("status") or {}).get("conditions") or []
    if (find_condition(conditions, "Approved") or {}).get("status") == "True":
        _mirror_answer(connection, hub_kind, live)
        request.refresh_from_db()
        return request, False
    text = f"{message} (approved by {actor} in Fleet UI)" if message else f"approved by {actor} in Fleet UI"
    approved = approval_condition(kind=hub_kind.kind, generation=int((live.get("metadata") or {}).get("generation") or 1),
                                  message=text, now=clock.now())
    body = {"status": {"conditions": [c for c in conditions if c.get("type") != "Approved"] + [approved]}}
    # The mirror row stays locked from before the patch until our Event is
    # committed: a sync session that sees the hub's change meanwhile waits
    # for it, then finds our Event and records no second approval.
    with transaction.atomic():
        type(request).objects.select_for_update().filter(pk=request.pk).first()
        answer = _hub_call(connection, request, "approved", lambda c: k8s.patch_status_merge(
            c, hub_kind.group, _version(connection, hub_kind), hub_kind.plural, request.name, body, namespace))
        before = dict(request.status or {})
        details = {"hub": connection.name, "comment": message, "client_address": client_address, "via": via}
        record(actor=actor, action=m.Event.Action.APPROVED, kind_name=request.KIND, name=request.name,
               namespace=request.namespace, run=(request.spec or {}).get("parentStageRollout", ""),
               reason=approved["reason"], message=message,
               details={**{k: v for k, v in details.items() if v or k == "comment"},
                        "changes": {"status.conditions": [before.get("conditions"), body["status"]["conditions"]]}})
        _mirror_answer(connection, hub_kind, answer)
    request.refresh_from_db()
    return request, True


def set_run_state_on_hub(run, state: str, *, actor: str):
    """Stop ("Stop") or resume ("Run") a mirrored run by a merge patch of its
    `spec.state` on the hub. Hubs of the legacy API (no spec.state) are
    refused plainly. Returns the mirrored run, updated."""
    if state not in ("Run", "Stop"):
        raise HubRefused(f'unsupported state "{state}": use Run or Stop')
    connection, hub_kind = _mirror_of(run, RUN_KINDS)
    namespace = run.namespace or None
    doing = "stopped" if state == "Stop" else "resumed"
    version = _version(connection, hub_kind)
    live = _hub_call(connection, run, doing, lambda c: k8s.get_object(
        c, hub_kind.group, version, hub_kind.plural, run.name, namespace))
    legacy = HubRefused(f"hub {connection.name} runs the legacy staged-update API: its runs have no spec.state "
                        f"and cannot be {doing}", code=400)
    if "state" not in (live.get("spec") or {}):
        raise legacy
    before = live["spec"]["state"]
    answer = _hub_call(connection, run, doing, lambda c: k8s.patch_spec_merge(
        c, hub_kind.group, version, hub_kind.plural, run.name, {"spec": {"state": state}}, namespace))
    if (answer.get("spec") or {}).get("state") != state:
        raise legacy  # the hub pruned a field it does not know
    with transaction.atomic():
        record(actor=actor, action=m.Event.Action.STATE_CHANGED, kind_name=run.KIND, name=run.name,
               namespace=run.namespace, run=run.name,
               details={"hub": connection.name, "changes": {"spec.state": [before, state]}})
        _mirror_answer(connection, hub_kind, answer)
    run.refresh_from_db()
    return run


def _version(connection: HubConnection, hub_kind: HubKind) -> str:
    """The API version the sync found the hub serving for this kind."""
    return (connection.watch_state or {}).get(hub_kind.kind, {}).get("version") or hub_kind.versions[0]


def _mirror_answer(connection: HubConnection, hub_kind: HubKind, obj: dict) -> None:
    """Mirror what the hub answered now (the watch brings the same version
    later and changes nothing); the person's Event is already written."""
    try:
        objects.mirror_upsert(connection, hub_kind, obj, record_events=False)
    except objects.Skipped:
        pass


# Connections and credentials ---------------------------------------------------


def kubeconfig_check(text: str, context: str) -> None:
    """Refuse a kubeconfig that cannot be used or that goes beyond
    rollouts.kubeconfig's allowlist (credential plugins, file paths, unknown
    fields), naming the field. Parses only: no client is built, nothing runs."""
    try:
        kubeconfig_parse(text, context)
    except KubeconfigRefused as exc:
        raise HubRefused(str(exc)) from None


def credential_save(credential, *, kubeconfig: str = "", context: str | None = None, actor: str):
    """Create or update a HubConnection or MemberCredential. A blank
    kubeconfig keeps the stored one (it is never shown, so it cannot be
    re-entered unchanged). The kubeconfig is checked, then encrypted."""
    if context is not None:
        credential.context = context
    if kubeconfig.strip():
        kubeconfig_check(kubeconfig, credential.context)
        credential.set_kubeconfig(kubeconfig)
    elif not credential.has_kubeconfig:
        raise HubRefused(f"{credential.name}: a kubeconfig is required")
    with transaction.atomic():
        created = credential.pk is None
        if isinstance(credential, HubConnection) and kubeconfig.strip() and not created:
            credential.watch_state = {}  # maybe another hub now: list everything again
        credential.save()
        record(actor=actor, action=m.Event.Action.CREATED if created else m.Event.Action.CONFIGURED,
               kind_name=type(credential).__name__, name=credential.name,
               details={"kubeconfig": "replaced" if kubeconfig.strip() else "kept", "context": credential.context})
    return credential


@dataclass(frozen=True)
class Rotation:
    """What `credentials_rotate` did: names re-encrypted, and names no key reads."""

    reencrypted: list[str]
    unreadable: list[str]


def credentials_rotate(*, actor: str) -> Rotation:
    """Re-encrypt every stored kubeconfig (hub connections, then member
    credentials) with the first FLEET_CREDENTIALS_KEY, each with an audit
    Event; afterwards the other keys can be removed. A kubeconfig no key
    decrypts is left as it is and named in `unreadable` (enter it again).
    One transaction: rows are locked, so a save meanwhile waits."""
    rotation = Rotation([], [])
    with transaction.atomic():
        for model in (HubConnection, MemberCredential):
            for credential in model.objects.select_for_update().exclude(kubeconfig_encrypted="").order_by("name"):
                _reencrypt(credential, rotation, actor)
    return rotation


def _reencrypt(credential, rotation: Rotation, actor: str) -> None:
    label = f"{type(credential).__name__}/{credential.name}"
    try:
        credential.reencrypt()
    except UnreadableCredential:
        rotation.unreadable.append(label)
        return
    credential.save(update_fields=["kubeconfig_encrypted"])
    record(actor=actor, action=m.Event.Action.CONFIGURED, kind_name=type(credential).__name__, name=credential.name,
           details={"kubeconfig": "re-encrypted with the first FLEET_CREDENTIALS_KEY"})
    rotation.reencrypted.append(label)


def hub_connection_delete(*, connection: HubConnection, actor: str) -> int:
    """Stop mirroring a hub: delete its mirrored rows, then the connection.
    Returns how many rows were removed."""
    with transaction.atomic():
        count = objects.mirror_forget(connection)
        record(actor=actor, action=m.Event.Action.DELETED, kind_name="HubConnection", name=connection.name,
               details={"mirroredObjectsRemoved": count})
        connection.delete()
    return count


def member_credential_delete(*, credential: MemberCredential, actor: str) -> None:
    with transaction.atomic():
        record(actor=actor, action=m.Event.Action.DELETED, kind_name="MemberCredential", name=credential.name)
        credential.delete()
