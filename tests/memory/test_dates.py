"""Relative time expressions resolve against the memory's own date (table-driven)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from memory.dates import resolve_mentions

MON_8_MAY_2023 = date(2023, 5, 8)
NEW_YEAR = date(2024, 1, 1)  # a Monday; the day after a year end
LEAP = date(2024, 3, 1)  # the day after a leap day
END_OF_MONTH = date(2023, 1, 31)

CASES = [
    # (text, anchor, start, end, rendered)
    (
        "I went to the support group yesterday.",
        MON_8_MAY_2023,
        "2023-05-07",
        "2023-05-07",
        "7 May 2023",
    ),
    ("We met last night.", MON_8_MAY_2023, "2023-05-07", "2023-05-07", "7 May 2023"),
    ("I got the keys today.", MON_8_MAY_2023, "2023-05-08", "2023-05-08", "8 May 2023"),
    ("The interview is tomorrow.", MON_8_MAY_2023, "2023-05-09", "2023-05-09", "9 May 2023"),
    (
        "It happened the day before yesterday.",
        MON_8_MAY_2023,
        "2023-05-06",
        "2023-05-06",
        "6 May 2023",
    ),
    ("We leave the day after tomorrow.", MON_8_MAY_2023, "2023-05-10", "2023-05-10", "10 May 2023"),
    (
        "I ran a charity race last Saturday.",
        MON_8_MAY_2023,
        "2023-05-06",
        "2023-05-06",
        "Saturday, 6 May 2023",
    ),
    ("Dinner was last Monday.", MON_8_MAY_2023, "2023-05-01", "2023-05-01", "Monday, 1 May 2023"),
    (
        "The party is next Friday.",
        MON_8_MAY_2023,
        "2023-05-12",
        "2023-05-12",
        "Friday, 12 May 2023",
    ),
    (
        "She called on Tuesday.",
        date(2022, 5, 12),
        "2022-05-10",
        "2022-05-10",
        "Tuesday, 10 May 2022",
    ),
    (
        "I started two weeks ago.",
        MON_8_MAY_2023,
        "2023-04-24",
        "2023-04-24",
        "around 24 April 2023",
    ),
    ("Three days ago I quit.", MON_8_MAY_2023, "2023-05-05", "2023-05-05", "5 May 2023"),
    ("We are moving next month.", MON_8_MAY_2023, "2023-06-01", "2023-06-30", "June 2023"),
    ("I changed jobs last month.", MON_8_MAY_2023, "2023-04-01", "2023-04-30", "April 2023"),
    (
        "Last week was busy.",
        MON_8_MAY_2023,
        "2023-05-01",
        "2023-05-07",
        "the week before 8 May 2023",
    ),
    (
        "We went camping last weekend.",
        MON_8_MAY_2023,
        "2023-05-06",
        "2023-05-07",
        "the weekend before 8 May 2023",
    ),
    (
        "The garden is lovely this spring.",
        MON_8_MAY_2023,
        "2023-03-01",
        "2023-05-31",
        "spring 2023",
    ),
    ("Last summer we swam a lot.", MON_8_MAY_2023, "2022-06-01", "2022-08-31", "summer 2022"),
    ("I painted a sunrise in 2022.", MON_8_MAY_2023, "2022-01-01", "2022-12-31", "2022"),
    (
        "I was born on 3 February 1990.",
        MON_8_MAY_2023,
        "1990-02-03",
        "1990-02-03",
        "3 February 1990",
    ),
    ("The flight is on May 8, 2023.", MON_8_MAY_2023, "2023-05-08", "2023-05-08", "8 May 2023"),
    ("I moved to Lisbon in March 2024.", MON_8_MAY_2023, "2024-03-01", "2024-03-31", "March 2024"),
    ("We go camping in June.", MON_8_MAY_2023, "2023-06-01", "2023-06-30", "June 2023"),
    ("It snowed in December.", MON_8_MAY_2023, "2022-12-01", "2022-12-31", "December 2022"),
    ("A year ago I lived in Berlin.", MON_8_MAY_2023, "2022-01-01", "2022-12-31", "2022"),
    # across a year end
    (
        "Yesterday was the last day of the year.",
        NEW_YEAR,
        "2023-12-31",
        "2023-12-31",
        "31 December 2023",
    ),
    ("Last month was December.", NEW_YEAR, "2023-12-01", "2023-12-31", "December 2023"),
    ("Last week I rested.", NEW_YEAR, "2023-12-25", "2023-12-31", "the week before 1 January 2024"),
    ("Last year I ran a marathon.", NEW_YEAR, "2023-01-01", "2023-12-31", "2023"),
    ("Last winter was cold.", date(2024, 1, 15), "2022-12-01", "2023-02-28", "winter 2022"),
    # leap day and month ends
    ("Yesterday was a leap day.", LEAP, "2024-02-29", "2024-02-29", "29 February 2024"),
    ("Next month starts soon.", END_OF_MONTH, "2023-02-01", "2023-02-28", "February 2023"),
    ("I was there on 2024-02-29.", LEAP, "2024-02-29", "2024-02-29", "29 February 2024"),
]


@pytest.mark.parametrize("text, anchor, start, end, rendered", CASES)
def test_expression_resolves_against_the_anchor(text, anchor, start, end, rendered):
    found = resolve_mentions(text, anchor)
    assert found, text
    m = found[0]
    assert (m.start_date.isoformat(), m.end_date.isoformat()) == (start, end)
    assert m.render() == rendered
    assert text[m.start : m.end] == m.text  # the span quotes the memory exactly


def test_anchor_may_be_an_aware_datetime():
    at = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert resolve_mentions("yesterday", at)[0].start_date == date(2023, 5, 7)


@pytest.mark.parametrize("text", ["I may go.", "We march on.", "", "no dates here"])
def test_no_false_dates(text):
    assert resolve_mentions(text, MON_8_MAY_2023) == []


def test_impossible_day_is_skipped_not_raised():
    found = resolve_mentions("It was 31 February 2023.", MON_8_MAY_2023)
    assert all(m.granularity != "day" for m in found)


def test_several_mentions_in_text_order():
    found = resolve_mentions("Yesterday I booked a trip for next month.", MON_8_MAY_2023)
    assert [m.text for m in found] == ["Yesterday", "next month"]
    assert found[0].relative and found[0].anchor == MON_8_MAY_2023
