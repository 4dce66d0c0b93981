"""Console bytes to clean text: no escape sequence or control reaches the text, however split."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.console.clean import MAX_PENDING, Cleaner
from harness.console.transcript import Transcript

CONTROLS = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]")  # all but \t \n \r


def cleaned(data: bytes, size: int) -> str:
    """`data` through one Cleaner in reads of `size` bytes, flushed."""
    c = Cleaner()
    return "".join(c.feed(data[i:i + size]) for i in range(0, len(data), size)) + c.flush()


def test_an_osc52_clipboard_write_split_across_reads_never_reaches_the_text():
    payload = b"\x1b]52;c;" + b"dG91Y2ggL3RtcC9wd25lZA==" * 200 + b"\x07"
    data = b"before " + payload + b"after\r\n"
    for size in (1, 2, 3, 7, 64, 255, 256, 257, 4096, len(data)):
        assert cleaned(data, size) == "before after\r\n", size
    st_terminated = b"x\x1b]52;c;" + b"QUJD" * 500 + b"\x1b\\y"  # ST instead of BEL
    assert cleaned(st_terminated, 5) == "xy"


def test_a_100kb_unterminated_osc_is_dropped_whole():
    c = Cleaner()
    out = c.feed(b"boot\x1b]52;c;") + c.feed(b"A" * 100_000) + c.feed(b"B" * 100_000)
    assert out == "boot" and c.flush() == ""
    assert c.feed(b"\x07Linux version 6.1\n") == "Linux version 6.1\n"


def test_a_long_string_ends_at_a_newline_so_line_noise_cannot_eat_the_boot():
    c = Cleaner()
    assert c.feed(b"\x1b]0;" + b"x" * 100) == ""
    assert c.feed(b"\nstill the title\n") == ""  # short: a newline is part of it
    assert c.feed(b"y" * MAX_PENDING) == ""
    assert c.feed(b"\nLinux version 6.1\n") == "\nLinux version 6.1\n"


def test_long_csi_sequences_split_across_reads_are_dropped():
    data = b"a\x1b[" + b"1;" * 500 + b"31mb\x1b[?" + b"9" * 300 + b"\nc"
    for size in (1, 5, 100, len(data)):
        assert cleaned(data, size) == "ab\nc", size  # a newline aborts the second


def test_controls_are_removed_and_line_ends_kept():
    out = cleaned(b"a\x07b\x08c\rd\x00e\x7ff\x0bg\x0ch\x1ai\xc2\x9bj\xc2\x85k\t\r\n", 4)
    assert out == "abc\rdefghijk\t\r\n"


def test_escapes_of_every_kind_are_dropped():
    data = (b"A\x1b(BB\x1b7C\x1bcD\x1b[2JE\x1bP1$r\x1b\\F\x1b_apc\x07G\x1b^pm\x1b\\H"
            b"\x1bX sos \x1b\\I\x1b#8J\x1b\nK")
    assert cleaned(data, 3) == cleaned(data, len(data)) == "ABCDEFGHIJ\nK"


def test_an_esc_inside_a_utf8_character_breaks_only_that_character():
    data = "caf\u00e9".encode()
    broken = data[:-1] + b"\x1b[31m" + data[-1:] + b" ok"
    for size in (1, 2, len(broken)):
        assert cleaned(broken, size) == "caf\ufffd\ufffd ok"
    assert cleaned(b"\xe2\x82" + b"\x1b]0;t\x07" + b"\xac!", 1) == "\ufffd\ufffd!"


def test_an_esc_inside_a_string_starts_a_new_sequence():
    assert cleaned(b"x\x1b]0;title\x1b[31my\x1b]2;t\x1b", 2) == "xy"


BYTES = st.lists(st.sampled_from([b"\x1b", b"[", b"]", b"P", b"\\", b"\x07", b"\n", b"\r",
                                  b"\x08", b"\x00", b"\x7f", b"1;", b"m", b"(B", b"a", b"Linux",
                                  "\u00e9".encode(), b"\xc2\x9b", b"\xe2", b"\x82\xac"]),
                 max_size=80).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(BYTES, st.integers(min_value=1, max_value=17))
def test_the_text_does_not_depend_on_how_reads_split_and_holds_no_control(data, size):
    whole = cleaned(data, max(len(data), 1))
    assert cleaned(data, size) == whole
    assert not CONTROLS.search(whole) and "\x1b" not in whole


def test_the_transcript_breaks_lines_at_a_lone_carriage_return(tmp_path):
    t = Transcript(tmp_path)
    t.write(b"", "10%\r20%\r30%\r\n", 1.0)
    t.write(b"", "done\r", 2.0)  # the first half of a CRLF split across reads
    t.write(b"", "\nnext\r\n", 3.0)
    t.close()
    log = (tmp_path / "console.log").read_text()
    assert log.splitlines() == ["[    1.000] 10%", "[    1.000] 20%", "[    1.000] 30%",
                                "[    2.000] done", "[    3.000] next"]
    assert "\r" not in log
