"""Loads runs, asks the state machine what to do, applies it and saves."""

from rollouts.controllers import labels as L
from rollouts.controllers.family import family_of


def run_finalize(*, run) -> None:
    """What the run's finalizer does on delete (§4.15): remove the approval
    requests labelled with its name; bindings stay as they are."""
    family = family_of(run)
    requests = family.approval_request.objects.filter(namespace=run.namespace)
    for request in requests:
        if request.labels.get(L.TARGET_UPDATE_RUN) == run.name:
            request.delete()
