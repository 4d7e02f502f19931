"""Member clusters behind one small interface.

A MemberConnector applies a snapshot's objects to a member, reports whether
they are applied and available, and removes what is no longer placed. The
simulated connector (the embedded default) keeps each member's objects in
the database; a member becomes real once it names a kubeconfig (see
KUBECONFIG_ANNOTATION; the Kubernetes connector lands with real clusters).
"""

KUBECONFIG_ANNOTATION = "fleetui.io/kubeconfig-secret"


def is_simulated(member) -> bool:
    """Whether Fleet UI simulates this member (no kubeconfig reference)."""
    return not (member.annotations or {}).get(KUBECONFIG_ANNOTATION)


class ReportDiffFailed(Exception):
    """The member's objects could not be compared with the manifests."""


def resource_identifier(manifest: dict) -> dict:
    """KubeFleet's ResourceIdentifier of a manifest (group, version, kind, name, namespace)."""
    group, _, version = (manifest.get("apiVersion") or "").rpartition("/")
    meta = manifest.get("metadata") or {}
    found = {"group": group, "version": version, "kind": manifest.get("kind") or "", "name": meta.get("name") or ""}
    return {**found, "namespace": meta["namespace"]} if meta.get("namespace") else found


class MemberConnector:
    """What Fleet UI needs from a member cluster. apply(), status() and
    remove() may raise rollouts.k8s.TemporaryK8sError when the member cannot
    be reached now: try again later."""

    def apply_seconds(self) -> float:
        """How long an apply takes, measured from the binding's RolloutStarted."""
        return 0.0

    def apply(self, member, *, placement: str, snapshot: str, manifests: list[dict]) -> str | None:
        """Make the member hold exactly these objects for the placement.
        Returns None when applied and available, or a failure message."""
        raise NotImplementedError

    def apply_many(self, applies: list[tuple]) -> list[str | None]:
        """apply() for each (member, placement, snapshot, manifests), in order.
        Connectors that can do them together (the simulated one: three
        statements for a whole sync) override this."""
        return [self.apply(member, placement=placement, snapshot=snapshot, manifests=manifests)
                for member, placement, snapshot, manifests in applies]

    def status(self, member, *, placement: str, manifests: list[dict]) -> tuple[str, str]:
        """After apply() returned a message: ("Available" | "NotAvailableYet" |
        "Failed", message) of the objects on the member. Connectors whose
        applies are all-or-nothing keep this default: a failed apply failed."""
        return "Failed", ""

    def report_diff(self, member, *, manifests: list[dict], full: bool) -> list[dict]:
        """The ReportDiff apply strategy: change nothing on the member, and
        return KubeFleet's `diffedPlacements` entries (group, version, kind,
        namespace, name, observedDiffs; no times) for the objects that differ
        from their manifest (rollouts.api.diff.observed_diffs), or are missing.
        Raises TemporaryK8sError when the member cannot be reached now, and
        ReportDiffFailed when it cannot be compared."""
        raise NotImplementedError

    def remove(self, member, *, placement: str) -> None:
        """Remove everything the placement put on the member."""
        raise NotImplementedError


def connector_for(member) -> MemberConnector:
    if is_simulated(member):
        from .simulated import SimulatedMember

        return SimulatedMember()
    from .kubernetes import KubernetesMember

    return KubernetesMember()
