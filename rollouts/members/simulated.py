"""Simulated member clusters: what each holds lives in MemberObject rows.

An apply takes FLEET_SIMULATED_APPLY_SECONDS (measured from the binding's
RolloutStarted, so the engine never sleeps), and a member labelled
`fleetui.io/simulate-apply-failure=true` fails its applies so a person can
see what a failing cluster looks like."""

from django.conf import settings

from rollouts import clock
from rollouts import models as m
from rollouts.api import store
from rollouts.api.diff import observed_diffs
from rollouts.controllers import labels as L

from . import MemberConnector, resource_identifier


def _key(manifest: dict) -> tuple:
    group = manifest.get("apiVersion", "").rpartition("/")[0]
    meta = manifest.get("metadata") or {}
    return group, manifest.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")


class SimulatedMember(MemberConnector):
    def apply_seconds(self) -> float:
        return float(getattr(settings, "FLEET_SIMULATED_APPLY_SECONDS", 0) or 0)

    def failure(self, member) -> str | None:
        if (member.labels or {}).get(L.SIMULATE_APPLY_FAILURE) == "true":
            return f"simulated apply failure: member {member.name} is labelled {L.SIMULATE_APPLY_FAILURE}=true"
        return None

    def apply(self, member, *, placement: str, snapshot: str, manifests: list[dict]) -> str | None:
        failure = self.failure(member)
        if failure:
            return failure
        wanted = {_key(x): x for x in manifests}
        held = m.MemberObject.objects.filter(cluster=member.name, placement=placement).values_list(
            "pk", "api_group", "kind", "namespace", "name")  # the keys only: no manifest to decode
        stale = [pk for pk, *key in held if tuple(key) not in wanted]
        if stale:
            m.MemberObject.objects.filter(pk__in=stale).delete()
        now = clock.now()
        rows = [
            m.MemberObject(cluster=member.name, api_group=k[0], kind=k[1], namespace=k[2], name=k[3],
                           manifest=x, placement=placement, resource_snapshot=snapshot, applied_at=now)
            for k, x in wanted.items()
        ]
        store.rows_upsert(m.MemberObject, rows, unique=["cluster", "api_group", "kind", "namespace", "name"],
                          update=["manifest", "placement", "resource_snapshot", "applied_at"])
        return None

    def report_diff(self, member, *, manifests: list[dict], full: bool) -> list[dict]:
        """Compare with what the member holds, whichever placement put it there."""
        wanted = {_key(x): x for x in manifests}
        held = {(o.api_group, o.kind, o.namespace, o.name): o.manifest
                for o in m.MemberObject.objects.filter(cluster=member.name, name__in={k[3] for k in wanted})}
        found = []
        for key, manifest in sorted(wanted.items()):
            diffs = observed_diffs(manifest, held.get(key), full=full)
            if diffs:
                found.append({**resource_identifier(manifest), "observedDiffs": diffs})
        return found

    def remove(self, member, *, placement: str) -> None:
        m.MemberObject.objects.filter(cluster=member.name, placement=placement).delete()
