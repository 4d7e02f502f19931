"""models/rows.CompiledRead: a row read whose SQL is compiled once gives the
same instance the ORM gives, deferred fields and converted values included,
and costs the same one query."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from rollouts import models as m
from rollouts.models.rows import CompiledRead

from . import fleet_builders as fb

pytestmark = pytest.mark.django_db

RUN = CompiledRead(lambda pk: m.ClusterStagedUpdateRun.objects.select_for_update().filter(pk=pk))
PLACEMENT = CompiledRead(lambda namespace, name: m.ClusterResourcePlacement.objects.filter(
    namespace=namespace, name=name).defer("status").order_by())


def field_values(obj) -> dict:
    deferred = obj.get_deferred_fields()
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields if f.attname not in deferred}


@pytest.fixture
def rolled_out(frozen_clock):
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    fb.settle()


def test_the_run_it_reads_equals_the_orms_in_every_field(rolled_out):
    pk = fb.run_obj().pk
    with transaction.atomic():
        compiled, orm = RUN.first(pk), m.ClusterStagedUpdateRun.objects.select_for_update().filter(pk=pk).first()
    assert field_values(compiled) == field_values(orm)
    assert compiled.status["conditions"], "JSON columns come back decoded"
    assert compiled._state.adding is False and compiled._state.db == "default"


def test_the_placement_keeps_its_deferred_status_deferred(rolled_out):
    placement = PLACEMENT.first("", "example-placement")
    orm = m.ClusterResourcePlacement.objects.defer("status").get(name="example-placement")
    assert placement.get_deferred_fields() == {"status"}
    assert field_values(placement) == field_values(orm)


def test_a_row_that_is_not_there_reads_as_none(rolled_out):
    assert PLACEMENT.first("", "no-such-placement") is None
    with transaction.atomic():
        assert RUN.first(10**9) is None


def test_every_read_is_one_query_and_the_sql_is_compiled_once(rolled_out):
    pk = fb.run_obj().pk
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        RUN.first(pk)
        RUN.first(pk)
    assert len(queries) == 2
    assert queries[0]["sql"] == queries[1]["sql"]
    assert len(RUN._compiled) == 1


def test_a_queryset_whose_sql_takes_other_parameters_goes_through_the_orm(rolled_out):
    # name__startswith adds its own parameter text ("example%"): not the one given.
    read = CompiledRead(lambda prefix: m.ClusterResourcePlacement.objects.filter(name__startswith=prefix))
    assert read.first("example").name == "example-placement"
    assert read._compiled == {("default", connection.vendor): None}


def test_parameters_find_their_place_whatever_order_django_puts_the_conditions_in(rolled_out):
    read = CompiledRead(lambda namespace, name: m.ClusterResourcePlacement.objects.filter(
        namespace=namespace, name=name).order_by())
    assert read.first("", "example-placement").name == "example-placement"
    assert read._compiled[("default", connection.vendor)] is not None
    assert read.first("", "example-placement").name == "example-placement"
    assert read.first("example-placement", "") is None


def test_a_first_call_whose_parameters_repeat_goes_through_the_orm_and_compiles_nothing(rolled_out):
    read = CompiledRead(lambda namespace, name: m.ClusterResourcePlacement.objects.filter(
        namespace=namespace, name=name).order_by())
    assert read.first("same", "same") is None
    assert read._compiled == {}
    assert read.first("", "example-placement").name == "example-placement"
    assert read._compiled[("default", connection.vendor)] is not None
