"""Every invalid manifest of the validation table, through `fleet apply` as a
person types it: one line on stderr, exit 1, no traceback, nothing changed;
and in a multi-document file, one bad document applies none of them."""

import pytest

from rollouts import models as m

from .test_validation import INVALID

pytestmark = pytest.mark.django_db

GOOD = """apiVersion: v1
kind: Namespace
metadata: {name: untouched}
"""


def _hub_size() -> int:
    return m.HubResource.objects.count() + sum(model.objects.count() for model in m.FLEET_MODELS) + m.Event.objects.count()


@pytest.mark.parametrize(("text", "path", "fragment"), INVALID)
def test_apply_refuses_an_invalid_manifest_in_one_line_and_changes_nothing(fleet, manifest_file, text, path, fragment):
    before = _hub_size()
    code, out, err = fleet("apply", "-f", manifest_file(GOOD + "---\n" + text))
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert path in err
    assert _hub_size() == before


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("kind: [", id="broken-yaml"),
        pytest.param("apiVersion: v1\nkind: Gadget\nmetadata: {name: x}\n", id="unknown-kind"),
        pytest.param("apiVersion: v1\nmetadata: {name: x}\n", id="missing-kind"),
        pytest.param("- just\n- a list\n", id="not-an-object"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: nowhere}\n", id="missing-namespace"),
        pytest.param("a: &a [1]\n" + "".join(f"b{i}: *a\n" for i in range(200)), id="alias-bomb"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: {k: " + "x" * (4 * 1024 * 1024) + "}\n",
                     id="huge-document"),
    ],
)
def test_apply_refuses_bad_input_of_any_kind_in_one_line(fleet, manifest_file, text):
    before = _hub_size()
    code, out, err = fleet("apply", "-f", manifest_file(GOOD + "---\n" + text))
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert _hub_size() == before
