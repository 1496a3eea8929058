# protocol/text.py: the one way both sides write a span of time, and the text bounds.
from protocol.text import clip, duration, listing


def test_durations_are_said_the_way_a_person_reads_them():
    cases = (
        (0, "0 s"),
        (1, "1 s"),  # rounded up: a wait is never said to be shorter than it is
        (40000, "40 s"),
        (60000, "1 min"),
        (118000, "1 min 58 s"),
        (118001, "1 min 59 s"),
        (3600000, "1 h"),
        (3660001, "1 h 2 min"),  # from an hour on, to the minute, rounded up
        (7205000, "2 h 1 min"),  # the device's style, now the host's and the CLI's too
        (-5000, "0 s"),  # a time already past
        (30 * 24 * 3600 * 1000, "720 h"),
    )
    assert [duration(ms) for ms, _ in cases] == [text for _, text in cases]


def test_clip_keeps_printable_ascii_within_its_room():
    assert clip("abc", 3) == "abc"
    assert clip("abcdef", 5) == "ab..."
    assert clip("a\nb\u00e9", 10) == "a?b?"


def test_clip_gives_a_text_that_needs_nothing_done_itself():
    # before: every text was made again, character by character (an emergency stop's
    # and an ack's texts as received: 416 B of the command on a 64-bit port)
    text = "emergency stop: 'air_in_line'"
    assert clip(text, 120) is text
    assert clip(text, 16) == "emergency sto..."
    assert clip("caf\u00e9", 10) == "caf?"


def test_a_listing_counts_what_it_leaves_out():
    assert listing(["one", "two", "three"], 40) == "one, two, three"
    assert listing(["one", "two", "three", "four"], 12) == "one, +3 more"
