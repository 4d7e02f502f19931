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
