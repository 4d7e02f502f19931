"""Real member clusters: snapshots applied by server-side apply, availability
judged as KubeFleet's member agent judges it.

A MemberCluster is real when its `fleetui.io/kubeconfig-secret` annotation
names a MemberCredential (rollouts.models.connections): the kubeconfig Fleet
UI uses for that member. What Fleet UI put on a member is kept as MemberObject
rows (the inventory, like KubeFleet's AppliedWork): objects that leave the
placement, and everything when the placement leaves, are deleted from it.

Applied objects carry the label `fleetui.io/placement` and the annotations
`fleetui.io/placement`, `fleetui.io/resource-snapshot` and
`fleetui.io/manifest-hash`; the hash tells status() whether the live object
is the one the current snapshot asked for.
"""

import copy
import hashlib
import json
import logging
import re
from enum import StrEnum

from rollouts import clock, k8s
from rollouts import models as m
from rollouts.api.diff import observed_diffs
from rollouts.api.errors import UnknownKind
from rollouts.api.kinds import KindRegistry
from rollouts.models.connections import MemberCredential, UnreadableCredential

from . import KUBECONFIG_ANNOTATION, MemberConnector, ReportDiffFailed, resource_identifier

log = logging.getLogger(__name__)

PLACEMENT_LABEL = "fleetui.io/placement"
PLACEMENT_ANNOTATION = "fleetui.io/placement"
SNAPSHOT_ANNOTATION = "fleetui.io/resource-snapshot"
HASH_ANNOTATION = "fleetui.io/manifest-hash"
# Set by the hub's API server or by kubectl on the hub: never sent to a member.
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink",
                  "ownerReferences", "deletionTimestamp", "deletionGracePeriodSeconds")
_HUB_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
# Applied first (and deleted last): what other objects live in or are instances of.
_FIRST = {("", "Namespace"): 0, ("apiextensions.k8s.io", "CustomResourceDefinition"): 1}
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class Availability(StrEnum):
    AVAILABLE = "Available"
    NOT_YET = "NotAvailableYet"
    FAILED = "Failed"


# Judging availability: pure functions of the live object ---------------------------


def judge(obj: dict) -> tuple[Availability, str]:
    """Whether a live object is available, as KubeFleet's work applier
    decides it (pkg/controllers/workapplier availability tracking). Kinds
    without a rule are available once applied."""
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Availability.NOT_YET, f"{_name(obj)} is being deleted"
    group = (obj.get("apiVersion") or "").rpartition("/")[0]
    rule = _RULES.get((group, obj.get("kind")))
    return rule(obj) if rule else (Availability.AVAILABLE, "")


def _name(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def _observed(obj: dict) -> bool:
    """The controller has seen the latest spec (status.observedGeneration)."""
    status = obj.get("status") or {}
    return status.get("observedGeneration", 0) >= (obj.get("metadata") or {}).get("generation", 0)


def _not_observed(obj: dict) -> tuple[Availability, str]:
    return Availability.NOT_YET, f"{_name(obj)}: its controller has not observed the latest generation yet"


def _deployment(obj: dict) -> tuple[Availability, str]:
    if not _observed(obj):
        return _not_observed(obj)
    want = (obj.get("spec") or {}).get("replicas", 1)
    status = obj.get("status") or {}
    available, updated = status.get("availableReplicas", 0), status.get("updatedReplicas", 0)
    if available == updated == want and not status.get("unavailableReplicas"):
        return Availability.AVAILABLE, ""
    stalled = next((c for c in status.get("conditions") or []
                    if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"), None)
    detail = f" ({stalled.get('message')})" if stalled else ""
    return Availability.NOT_YET, f"{_name(obj)}: {available}/{want} replicas available, {updated} updated{detail}"


def _statefulset(obj: dict) -> tuple[Availability, str]:
    if not _observed(obj):
        return _not_observed(obj)
    want = (obj.get("spec") or {}).get("replicas", 1)
    status = obj.get("status") or {}
    available = status.get("availableReplicas", 0)
    if available == want and status.get("currentRevision") == status.get("updateRevision"):
        return Availability.AVAILABLE, ""
    return Availability.NOT_YET, (f"{_name(obj)}: {available}/{want} replicas available, revision "
                                  f"{status.get('currentRevision')} rolling to {status.get('updateRevision')}")


def _daemonset(obj: dict) -> tuple[Availability, str]:
    if not _observed(obj):
        return _not_observed(obj)
    status = obj.get("status") or {}
    want = status.get("desiredNumberScheduled", 0)
    available, updated = status.get("numberAvailable", 0), status.get("updatedNumberScheduled", 0)
    if available == want and updated == want:
        return Availability.AVAILABLE, ""
    return Availability.NOT_YET, f"{_name(obj)}: {available}/{want} pods available, {updated} updated"


def _job(obj: dict) -> tuple[Availability, str]:
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Failed" in conditions:
        failed = conditions["Failed"]
        return Availability.FAILED, f"{_name(obj)} failed: {failed.get('reason', '')} {failed.get('message', '')}"
    if "Complete" in conditions or status.get("succeeded", 0) >= 1 or status.get("ready", 0) >= 1:
        return Availability.AVAILABLE, ""
    return Availability.NOT_YET, f"{_name(obj)}: no pod has succeeded or is ready yet"


def _service(obj: dict) -> tuple[Availability, str]:
    spec = obj.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return Availability.AVAILABLE, ""
    if spec.get("type") == "LoadBalancer":
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if any(i.get("ip") or i.get("hostname") for i in ingress):
            return Availability.AVAILABLE, ""
        return Availability.NOT_YET, f"{_name(obj)}: the load balancer has no address yet"
    if spec.get("clusterIP") or spec.get("clusterIPs"):
        return Availability.AVAILABLE, ""
    return Availability.NOT_YET, f"{_name(obj)}: no cluster IP yet"


def _crd(obj: dict) -> tuple[Availability, str]:
    established = any(c.get("type") == "Established" and c.get("status") == "True"
                      for c in (obj.get("status") or {}).get("conditions") or [])
    return (Availability.AVAILABLE, "") if established else (Availability.NOT_YET, f"{_name(obj)} is not established")


def _pdb(obj: dict) -> tuple[Availability, str]:
    status = obj.get("status") or {}
    if _observed(obj) and status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0):
        return Availability.AVAILABLE, ""
    return Availability.NOT_YET, f"{_name(obj)}: {status.get('currentHealthy', 0)} healthy pods of " \
                                 f"{status.get('desiredHealthy', 0)} wanted"


_RULES = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("", "Service"): _service,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("policy", "PodDisruptionBudget"): _pdb,
}


# Preparing what is sent ------------------------------------------------------------


def manifest_hash(manifest: dict) -> str:
    """A stable hash of a snapshot's object as the hub holds it."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:32]


def placement_label(placement: str) -> str:
    """The placement's name as a label value (a hash when it does not fit)."""
    if len(placement) <= 63 and _LABEL_VALUE.match(placement):
        return placement
    return "h-" + hashlib.sha256(placement.encode()).hexdigest()[:40]


def cleaned(manifest: dict) -> dict:
    """The hub's object without its server-set fields, status and the
    annotations only the hub's clients use: what a member is compared with."""
    obj = copy.deepcopy(manifest)
    obj.pop("status", None)
    meta = obj.setdefault("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _HUB_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return obj


def prepared(manifest: dict, *, placement: str, snapshot: str) -> dict:
    """What is applied: the cleaned hub object, labelled with the placement
    and annotated with snapshot and hash."""
    obj = cleaned(manifest)
    meta = obj["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), PLACEMENT_LABEL: placement_label(placement)}
    meta["annotations"] = {**(meta.get("annotations") or {}), PLACEMENT_ANNOTATION: placement,
                           SNAPSHOT_ANNOTATION: snapshot, HASH_ANNOTATION: manifest_hash(manifest)}
    return obj


def _order(manifest: dict) -> int:
    group = (manifest.get("apiVersion") or "").rpartition("/")[0]
    return _FIRST.get((group, manifest.get("kind")), 2)


# The connector -----------------------------------------------------------------------


class MemberUnreachable(Exception):
    """The member's credential is missing or unusable; `str()` says why."""


class KubernetesMember(MemberConnector):
    """A member cluster reached through the official client.

    force: server-side apply takes over fields other managers own (KubeFleet's
    default whenToTakeOver: Always); without it such conflicts fail the apply."""

    POLL_SECONDS = 5.0  # how soon to look again at objects not available yet

    def __init__(self, *, client=None, force: bool = True):
        self._client, self.force = client, force
        self._registry = None

    def apply_seconds(self) -> float:
        return 0.0  # a real apply takes the time it takes; nothing to simulate

    def client_for(self, member):
        """The member's ApiClient, from the MemberCredential its annotation names."""
        if self._client is not None:
            return self._client
        name = (member.annotations or {}).get(KUBECONFIG_ANNOTATION, "")
        credential = MemberCredential.objects.filter(name=name).first()
        if credential is None:
            raise MemberUnreachable(f"member {member.name} names kubeconfig {name!r}, which Fleet UI does not have")
        try:
            self._client = k8s.client_from_kubeconfig(credential.kubeconfig(), credential.context)
        except (UnreadableCredential, k8s.K8sError) as exc:
            raise MemberUnreachable(f"member {member.name}: {exc}") from None
        return self._client

    def resource(self, manifest: dict) -> tuple[str, bool]:
        """(plural, namespaced) of a manifest's kind, as Fleet UI's hub serves it."""
        if self._registry is None:
            self._registry = KindRegistry()
        kind = self._registry.for_manifest(manifest.get("apiVersion") or "", manifest.get("kind") or "")
        return kind.plural, kind.namespaced

    # Apply ------------------------------------------------------------------------

    def apply(self, member, *, placement: str, snapshot: str, manifests: list[dict]) -> str | None:
        """Server-side apply every object (field manager `fleetui`), delete what
        left the placement, record the inventory. Returns None when everything
        is applied and available, else a one-line message; status() tells
        "applied, not available yet" from a failure. Raises TemporaryK8sError
        when the member cannot be reached now (try again later)."""
        try:
            client = self.client_for(member)
            wanted = sorted(manifests, key=_order)
            for manifest in wanted:
                self._apply_one(client, manifest, placement=placement, snapshot=snapshot)
            self._delete_left(client, member, placement, wanted)
            self._record(member, placement, snapshot, wanted)
        except (MemberUnreachable, k8s.PermanentK8sError, UnknownKind) as exc:
            return str(exc)
        state, message = self.status(member, placement=placement, manifests=manifests)
        return None if state == Availability.AVAILABLE else message

    def _apply_one(self, client, manifest: dict, *, placement: str, snapshot: str) -> None:
        plural, namespaced = self.resource(manifest)
        obj = prepared(manifest, placement=placement, snapshot=snapshot)
        try:
            k8s.server_side_apply(client, obj, plural=plural, namespaced=namespaced, force=self.force)
        except k8s.K8sError as exc:
            raise type(exc)(f"applying {_name(obj)} to the member failed: {exc}", status=exc.status) from None

    def _key(self, manifest: dict) -> tuple[str, str, str, str]:
        group = (manifest.get("apiVersion") or "").rpartition("/")[0]
        _, namespaced = self.resource(manifest)
        meta = manifest.get("metadata") or {}
        return group, manifest.get("kind") or "", (meta.get("namespace") or "default") if namespaced else "", \
            meta.get("name") or ""

    def _delete_left(self, client, member, placement: str, wanted: list[dict]) -> None:
        keep = {self._key(x) for x in wanted}
        for row in self._inventory(member, placement):
            if (row.api_group, row.kind, row.namespace, row.name) not in keep and self._delete(client, row, placement):
                row.delete()

    def _record(self, member, placement: str, snapshot: str, wanted: list[dict]) -> None:
        now = clock.now()
        for manifest in wanted:
            group, kind, namespace, name = self._key(manifest)
            m.MemberObject.objects.update_or_create(
                cluster=member.name, api_group=group, kind=kind, namespace=namespace, name=name,
                defaults={"manifest": manifest, "placement": placement, "resource_snapshot": snapshot,
                          "applied_at": now})

    # ReportDiff ---------------------------------------------------------------------

    def report_diff(self, member, *, manifests: list[dict], full: bool) -> list[dict]:
        """Compare each manifest with the live object, changing nothing. With
        PartialComparison the manifest's values are read back from a dry-run
        server-side apply, so the member's API server normalizes them as it
        would store them; FullComparison compares the manifest as written with
        everything the live object holds (but what the server adds)."""
        try:
            client = self.client_for(member)
            found = []
            for manifest in sorted((cleaned(x) for x in manifests), key=_order):
                plural, namespaced = self.resource(manifest)
                live = k8s.get_object_by_manifest(client, manifest, plural=plural, namespaced=namespaced)
                normalized = None
                if live is not None and not full:
                    normalized = k8s.server_side_apply(client, manifest, plural=plural, namespaced=namespaced,
                                                       force=True, dry_run=True)
                diffs = observed_diffs(manifest, live, full=full, normalized=normalized)
                if diffs:
                    found.append({**resource_identifier(manifest), "observedDiffs": diffs})
            return found
        except (MemberUnreachable, k8s.PermanentK8sError, UnknownKind) as exc:
            raise ReportDiffFailed(str(exc)) from None

    # Status -------------------------------------------------------------------------

    def status(self, member, *, placement: str, manifests: list[dict]) -> tuple[str, str]:
        """("Available" | "NotAvailableYet" | "Failed", message) of the objects
        the snapshot asks for, read live from the member. Failed: an object
        is missing or not the snapshot's (its apply failed), or it failed for
        good (a failed Job). Raises TemporaryK8sError when the member cannot
        be read now."""
        waiting = []
        try:
            client = self.client_for(member)
            for manifest in sorted(manifests, key=_order):
                plural, namespaced = self.resource(manifest)
                live = k8s.get_object_by_manifest(client, manifest, plural=plural, namespaced=namespaced)
                state, message = self._judge_live(manifest, live)
                if state == Availability.FAILED:
                    return state.value, message
                if state == Availability.NOT_YET:
                    waiting.append(message)
        except (MemberUnreachable, k8s.PermanentK8sError, UnknownKind) as exc:
            return Availability.FAILED.value, str(exc)
        if waiting:
            more = f" (and {len(waiting) - 1} more)" if len(waiting) > 1 else ""
            return Availability.NOT_YET.value, waiting[0] + more
        return Availability.AVAILABLE.value, ""

    def _judge_live(self, manifest: dict, live: dict | None) -> tuple[Availability, str]:
        name = _name(manifest)
        if live is None:
            return Availability.FAILED, f"{name} is not on the member"
        annotations = (live.get("metadata") or {}).get("annotations") or {}
        if annotations.get(HASH_ANNOTATION) != manifest_hash(manifest):
            return Availability.FAILED, f"{name} on the member is not the snapshot's version"
        return judge(live)

    # Remove -------------------------------------------------------------------------

    def remove(self, member, *, placement: str) -> None:
        """Delete everything the placement put on the member (namespaces last).
        Raises TemporaryK8sError when the member cannot be reached, so the
        caller retries; objects someone else took over are left alone."""
        rows = sorted(self._inventory(member, placement), key=lambda r: -_order(r.manifest))
        if not rows:
            return
        try:
            client = self.client_for(member)
        except MemberUnreachable as exc:
            log.warning("not removing placement %s from %s: %s", placement, member.name, exc)
            return
        for row in rows:
            if self._delete(client, row, placement):
                row.delete()

    def _inventory(self, member, placement: str) -> list:
        return list(m.MemberObject.objects.filter(cluster=member.name, placement=placement))

    def _delete(self, client, row, placement: str) -> bool:
        """Delete one inventoried object if it still carries our placement
        label. Returns whether the inventory row can go (deleted, gone, or
        no longer ours); a refusal keeps it, to try again next time."""
        try:
            plural, namespaced = self.resource(row.manifest)
        except UnknownKind:
            log.warning("cannot delete %s %s from %s: the hub no longer knows its kind", row.kind, row.name,
                        row.cluster)
            return False
        version = (row.manifest.get("apiVersion") or "").rpartition("/")[2]
        namespace = row.namespace if namespaced else None
        try:
            live = k8s.get_object(client, row.api_group, version, plural, row.name, namespace)
            if ((live.get("metadata") or {}).get("labels") or {}).get(PLACEMENT_LABEL) != placement_label(placement):
                log.info("%s %s on %s is no longer ours; left in place", row.kind, row.name, row.cluster)
                return True
            k8s.delete_object(client, row.api_group, version, plural, row.name, namespace,
                              uid=live["metadata"].get("uid", ""))
        except k8s.NotFoundError:
            return True
        except k8s.PermanentK8sError as exc:
            log.warning("could not delete %s %s from %s: %s", row.kind, row.name, row.cluster, exc)
            return False
        return True
