"""One leaf-by-leaf diff under the audit log's changes and the snapshot diffs."""

from rollouts.api.diff import MISSING, changed_leaves, leaves


def test_leaves_flatten_objects_and_keep_lists_whole():
    assert leaves({"spec": {"state": "Run", "stages": [1, 2]}, "data": {}}) == {
        "spec.state": "Run", "spec.stages": [1, 2], "data": {}}


def test_a_path_on_one_side_only_is_missing_on_the_other():
    assert changed_leaves({"spec": {}}, {"spec": {"state": "Stop"}}) == {
        "spec": ({}, MISSING), "spec.state": (MISSING, "Stop")}


def test_equal_documents_have_no_changes():
    assert changed_leaves({"a": {"b": [1]}}, {"a": {"b": [1]}}) == {}
