"""One Go-duration parser for strategies' waitTime and `fleet wait --timeout`."""

import pytest

from rollouts.api.durations import parse_duration
from rollouts.engine.stages import wait_seconds


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("2m", 120), ("1m30s", 90), ("1.5h", 5400), ("500ms", 0.5), ("0", 0), ("1h0m0s", 3600),
    ("250us", 0.00025), (" 5s ", 5),
])
def test_it_reads_go_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5", "5d", "-5s", "1m 30s", "s"])
def test_it_refuses_what_go_refuses(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_timed_wait_of_500ms_is_half_a_second_not_500_minutes():
    assert wait_seconds("500ms") == 0.5


def test_an_unreadable_wait_time_counts_as_zero_for_the_initialization_check():
    assert wait_seconds("") == 0.0
