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


class MemberConnector:
    """What Fleet UI needs from a member cluster."""

    def apply(self, member, *, placement: str, snapshot: str, manifests: list[dict]) -> str | None:
        """Make the member hold exactly these objects for the placement.
        Returns None when applied and available, or a failure message."""
        raise NotImplementedError

    def remove(self, member, *, placement: str) -> None:
        """Remove everything the placement put on the member."""
        raise NotImplementedError


def connector_for(member) -> MemberConnector:
    from .simulated import SimulatedMember

    return SimulatedMember()
