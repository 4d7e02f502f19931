"""Simulated member clusters: what each holds lives in MemberObject rows.

An apply takes FLEET_SIMULATED_APPLY_SECONDS (measured from the binding's
RolloutStarted, so the engine never sleeps), and a member labelled
`fleetui.io/simulate-apply-failure=true` fails its applies so a person can
see what a failing cluster looks like."""

from types import SimpleNamespace

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
        return self.apply_many([(member, placement, snapshot, manifests)])[0]

    def apply_many(self, applies: list[tuple]) -> list[str | None]:
        """Each member holds exactly its placement's objects afterwards: one
        read of the keys held, one delete of the stale ones, one upsert."""
        failures = [self.failure(member) for member, *_ in applies]
        todo = [a for a, failure in zip(applies, failures, strict=True) if failure is None]
        if todo:
            wanted = {(member.name, placement): {_key(x): x for x in manifests}
                      for member, placement, _, manifests in todo}
            held = m.MemberObject.objects.filter(
                cluster__in={c for c, _ in wanted}, placement__in={p for _, p in wanted}).order_by().values_list(
                "pk", "cluster", "placement", "api_group", "kind", "namespace", "name")  # keys only: nothing to decode
            stale = [pk for pk, cluster, placement, *key in held
                     if (cluster, placement) in wanted and tuple(key) not in wanted[cluster, placement]]
            if stale:
                m.MemberObject.objects.filter(pk__in=stale).delete()
            now = clock.now()
            # Plain rows, not model instances: thousands of them a tick of waves.
            rows = [SimpleNamespace(cluster=member.name, api_group=k[0], kind=k[1], namespace=k[2], name=k[3],
                                    manifest=x, placement=placement, resource_snapshot=snapshot, applied_at=now)
                    for member, placement, snapshot, _ in todo for k, x in wanted[member.name, placement].items()]
            store.rows_upsert(m.MemberObject, rows, unique=["cluster", "api_group", "kind", "namespace", "name"],
                              update=["manifest", "placement", "resource_snapshot", "applied_at"])
        return failures

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
