"""Weekly freeze windows (rollouts.freeze_windows): wall-clock windows in an
IANA time zone, across DST changes. Pure: no database."""

from datetime import UTC, datetime

import pytest

from rollouts.freeze_windows import (
    WindowError,
    format_windows,
    in_windows,
    next_change,
    parse_windows,
    zone,
)

BERLIN = zone("Europe/Berlin")
WEEKEND = parse_windows("Sat 00:00-Mon 06:00")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment,inside",
    [
        pytest.param(utc(2026, 12, 4, 22, 59), False, id="friday-23-59-berlin-is-outside"),
        pytest.param(utc(2026, 12, 4, 23, 0), True, id="saturday-00-00-berlin-opens-it"),
        pytest.param(utc(2026, 12, 6, 12, 0), True, id="sunday-noon-is-inside"),
        pytest.param(utc(2026, 12, 7, 4, 59), True, id="monday-05-59-berlin-is-inside"),
        pytest.param(utc(2026, 12, 7, 5, 0), False, id="monday-06-00-berlin-closes-it"),
        pytest.param(utc(2026, 12, 9, 12, 0), False, id="wednesday-is-outside"),
    ],
)
def test_a_weekend_window_wraps_past_sunday_in_its_time_zone(moment, inside):
    assert in_windows(WEEKEND, BERLIN, moment) is inside


def test_the_next_change_is_the_window_edge_in_utc():
    assert next_change(WEEKEND, BERLIN, utc(2026, 12, 2, 12, 0)) == utc(2026, 12, 4, 23, 0)  # CET: UTC+1
    assert next_change(WEEKEND, BERLIN, utc(2026, 12, 5, 12, 0)) == utc(2026, 12, 7, 5, 0)
    assert next_change(WEEKEND, BERLIN, utc(2026, 7, 1, 12, 0)) == utc(2026, 7, 3, 22, 0)  # CEST: UTC+2


def test_a_window_across_the_spring_dst_change_keeps_its_wall_clock_edges():
    # Berlin jumps from 02:00 CET to 03:00 CEST on Sunday 29 March 2026 (01:00 UTC).
    opens = next_change(WEEKEND, BERLIN, utc(2026, 3, 26, 12, 0))
    closes = next_change(WEEKEND, BERLIN, opens)
    assert opens == utc(2026, 3, 27, 23, 0)  # Saturday 00:00 CET
    assert closes == utc(2026, 3, 30, 4, 0)  # Monday 06:00 CEST: the window is an hour shorter in UTC


def test_a_window_edge_the_clocks_skip_opens_at_the_jump():
    skipped = parse_windows("Sun 02:30-Sun 04:00")
    assert next_change(skipped, BERLIN, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)
    assert in_windows(skipped, BERLIN, utc(2026, 3, 29, 1, 0))  # 03:00 CEST, inside


def test_a_window_across_the_autumn_dst_change_is_an_hour_longer_in_utc():
    night = parse_windows("Sun 00:00-Sun 06:00")  # Berlin falls back 03:00 CEST -> 02:00 CET on 25 October 2026
    opens = next_change(night, BERLIN, utc(2026, 10, 24, 12, 0))
    assert (opens, next_change(night, BERLIN, opens)) == (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 5, 0))


def test_the_same_window_in_another_zone_is_another_instant():
    new_york = zone("America/New_York")
    assert in_windows(WEEKEND, new_york, utc(2026, 12, 5, 3, 0)) is False  # Friday 22:00 in New York
    assert in_windows(WEEKEND, BERLIN, utc(2026, 12, 5, 3, 0)) is True


@pytest.mark.parametrize(
    "text,words",
    [
        pytest.param("weekends", "not a weekly window", id="prose"),
        pytest.param("Sat 00:00-Mon 25:00", "not a time of day", id="hour-25"),
        pytest.param("Sam 00:00-Mon 06:00", "not a day", id="unknown-day"),
        pytest.param("Mon 06:00-Mon 06:00", "is empty", id="empty-window"),
    ],
)
def test_an_unreadable_window_is_refused_naming_the_part(text, words):
    with pytest.raises(WindowError, match=words):
        parse_windows(text)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(WindowError, match="not an IANA time zone"):
        zone("Mars/Olympus_Mons")


def test_windows_print_as_they_are_read():
    text = "Fri 18:00-Mon 06:00, Wed 12:00-Wed 13:00"
    assert format_windows(parse_windows(text.lower())) == text
