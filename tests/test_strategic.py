"""Strategic merge patches as kubectl sends them for the built-in kinds
(rollouts.api.strategic): a matrix of patch → result, no database."""

import pytest

from rollouts.api.strategic import UnsupportedPatch, strategic_merge

POD = {"containers": [{"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"},
                                                                 {"name": "B", "value": "2"}]},
                      {"name": "sidecar", "image": "busybox"}],
       "tolerations": [{"key": "x"}], "nodeSelector": {"a": "1", "b": "2"}}


@pytest.mark.parametrize(("patch", "expected"), [
    pytest.param({"nodeSelector": {"b": None, "c": "3"}}, {**POD, "nodeSelector": {"a": "1", "c": "3"}},
                 id="maps merge and null deletes, as a merge patch"),
    pytest.param({"$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                  "containers": [{"name": "app", "image": "nginx:2"}]},
                 {**POD, "containers": [{**POD["containers"][0], "image": "nginx:2"}, POD["containers"][1]]},
                 id="a container merges by name, the others stay"),
    pytest.param({"containers": [{"name": "app", "$setElementOrder/env": [{"name": "A"}],
                                  "env": [{"$patch": "delete", "name": "B"}]}]},
                 {**POD, "containers": [{**POD["containers"][0], "env": [{"name": "A", "value": "1"}]},
                                        POD["containers"][1]]},
                 id="$patch delete removes one env entry"),
    pytest.param({"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]},
                 {**POD, "containers": [POD["containers"][1], POD["containers"][0]]},
                 id="$setElementOrder reorders"),
    pytest.param({"containers": [{"name": "new", "image": "redis"}]},
                 {**POD, "containers": [*POD["containers"], {"name": "new", "image": "redis"}]},
                 id="a new container is appended"),
    pytest.param({"tolerations": [{"key": "y"}]}, {**POD, "tolerations": [{"key": "y"}]},
                 id="a list without a merge key is replaced"),
    pytest.param({"nodeSelector": {"$patch": "replace", "z": "9"}}, {**POD, "nodeSelector": {"z": "9"}},
                 id="$patch replace replaces a map"),
    pytest.param({"nodeSelector": {"a": "1", "b": "2"}, "$retainKeys": ["nodeSelector"]},
                 {"nodeSelector": {"a": "1", "b": "2"}}, id="$retainKeys keeps only the keys it names"),
])
def test_a_strategic_merge_patch_merges_as_the_api_server_does(patch, expected):
    assert strategic_merge(POD, patch) == expected


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list_removes():
    meta = {"finalizers": ["a", "b"]}
    assert strategic_merge(meta, {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]}) == {
        "finalizers": ["b", "c"]}


def test_a_directive_in_a_list_without_a_known_merge_key_is_refused_naming_where():
    with pytest.raises(UnsupportedPatch) as refused:
        strategic_merge({"rules": [{"host": "a"}]}, {"rules": [{"$patch": "delete", "host": "a"}]})
    assert refused.value.code == 415 and "spec" not in str(refused.value) and ".rules" in str(refused.value)


def test_the_patch_and_the_target_are_left_as_they_were():
    patch = {"containers": [{"name": "app", "image": "nginx:2"}]}
    strategic_merge(POD, patch)
    assert POD["containers"][0]["image"] == "nginx:1" and patch == {"containers": [{"name": "app", "image": "nginx:2"}]}
