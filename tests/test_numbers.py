"""Integers read from text: only ASCII digits count (rollouts.api.numbers)."""

import pytest

from rollouts.api.numbers import parse_signed, parse_unsigned


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("12", 12), ("007", 7), (3, 3)])
def test_ascii_digits_are_read_as_their_value(text, value):
    assert parse_unsigned(text) == value


@pytest.mark.parametrize("text", ["", "²", "٣", "１", "1_0", " 1", "1 ", "-1", "+1", "0x1", "1.0", "1\n"])
def test_anything_else_is_not_an_unsigned_integer(text):
    assert parse_unsigned(text) is None


@pytest.mark.parametrize(("text", "value"), [("-3", -3), ("+4", 4), ("5", 5)])
def test_a_sign_is_allowed_where_the_value_may_be_negative(text, value):
    assert parse_signed(text) == value


@pytest.mark.parametrize("text", ["-²", "--1", "+", "٣"])
def test_a_signed_integer_still_needs_ascii_digits(text):
    assert parse_signed(text) is None
