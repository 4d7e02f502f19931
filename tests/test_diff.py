"""One leaf-by-leaf diff under the audit log's changes and the snapshot diffs."""

from rollouts.api.diff import MISSING, changed_leaves, leaves


def test_leaves_flatten_objects_and_keep_lists_whole():
    assert leaves({"spec": {"state": "Run", "stages": [1, 2]}, "data": {}}) == {
        "spec.state": "Run", "spec.stages": [1, 2], "data": {}}


def test_a_path_on_one_side_only_is_missing_on_the_other():
    assert changed_leaves({"spec": {"state": "Run"}}, {"spec": {"mode": "x"}}) == {
        "spec.mode": (MISSING, "x"), "spec.state": ("Run", MISSING)}


def test_equal_documents_have_no_changes():
    assert changed_leaves({"a": {"b": [1]}}, {"a": {"b": [1]}}) == {}


def test_an_empty_object_filled_on_the_other_side_is_not_a_change_of_its_own():
    assert changed_leaves({}, {"kind": "Namespace"}) == {"kind": (MISSING, "Namespace")}
    assert changed_leaves({"status": {}}, {"status": {"phase": "Ready"}}) == {"status.phase": (MISSING, "Ready")}
    assert changed_leaves({"data": {"a": "1"}}, {"data": {}}) == {"data.a": ("1", MISSING)}


def test_an_empty_object_that_appears_or_goes_is_still_a_change():
    assert changed_leaves({}, {"data": {}}) == {"data": (MISSING, {})}
