"""The hand-written schemas that remain: metadata, conditions, label selectors
(whose keys, values and operators the CRDs leave open) and the core kinds the
tutorial uses. Fleet kinds' schemas come from their CRDs (api/crds)."""


from ..labels import selector_problem
from .formats import (
    annotation_key_problem,
    config_key_problem,
    date_time_problem,
    label_value_problem,
    qualified_name_problem,
)
from .nodes import (
    Base64,
    Causes,
    Int,
    ListOf,
    MapOf,
    Obj,
    Str,
    show,
)

# --- shared schemas ----------------------------------------------------------


def _expression_rule(expression: dict, path: str, causes: Causes) -> None:
    if problem := selector_problem({"matchExpressions": [expression]}):
        causes.append((path, problem))


LABEL_SELECTOR = Obj(
    {
        "matchLabels": MapOf(Str(check_fn=label_value_problem), key_fn=qualified_name_problem),
        "matchExpressions": ListOf(
            Obj(
                {
                    "key": Str(check_fn=qualified_name_problem),
                    "operator": Str(enum=("In", "NotIn", "Exists", "DoesNotExist")),
                    "values": ListOf(Str()),
                },
                required=("key", "operator"),
                rules=(_expression_rule,),
            )
        ),
    }
)

METADATA = Obj(
    {
        "name": Str(),
        "generateName": Str(),
        "namespace": Str(),
        "labels": MapOf(Str(check_fn=label_value_problem), key_fn=qualified_name_problem),
        "annotations": MapOf(Str(), key_fn=annotation_key_problem, max_bytes=256 * 1024),
        "finalizers": ListOf(Str()),
        "ownerReferences": ListOf(Obj()),
    }
)

CONDITION = Obj(
    {
        "type": Str(max_len=316),
        "status": Str(enum=("True", "False", "Unknown")),
        "reason": Str(max_len=1024),
        "message": Str(max_len=32768),
        "observedGeneration": Int(minimum=0),
        "lastTransitionTime": Str(check_fn=date_time_problem),
    },
    required=("type", "status"),
)


def _unique_condition_types(status: dict, path: str, causes: Causes) -> None:
    """Conditions are a list-map keyed by type: one entry per type."""
    seen = set()
    for index, condition in enumerate(status.get("conditions") or []):
        if condition["type"] in seen:
            message = f"Duplicate value: type {show(condition['type'])}"
            causes.append((f"{path}.conditions[{index}]", message))
        seen.add(condition["type"])


STATUS = Obj({"conditions": ListOf(CONDITION)}, rules=(_unique_condition_types,))

# --- core kinds: checked on the whole manifest ---------------------------------

CONFIG_MAP = Obj(
    {
        "data": MapOf(Str(), key_fn=config_key_problem),
        "binaryData": MapOf(Base64(), key_fn=config_key_problem),
    }
)
SECRET = Obj(
    {
        "data": MapOf(Base64(), key_fn=config_key_problem),
        "stringData": MapOf(Str(), key_fn=config_key_problem),
        "type": Str(),
    }
)

