"""console.log keeps the guest's lines whole: the harness's notes go after the line
they concern, never into it (a read that ends mid-line used to split it)."""

from __future__ import annotations

from harness.console.transcript import Transcript


def test_a_note_in_the_middle_of_a_line_waits_for_its_end(tmp_path):
    t = Transcript(tmp_path, raw=False)
    t.write(b"", "Linux version 6.1", 0.5)
    t.note(0.6, "milestone 'kernel' matched 'Linux version 6'")
    t.write(b"", ".0-57-amd64 (debian-kernel@lists.debian.org)\nRun /init", 0.7)
    t.note(0.8, "milestone 'init' matched 'Run /init'")
    t.write(b"", " as init process\r\nlogin: ", 0.9)
    t.note(1.0, "milestone 'login' matched 'login: '")
    t.note(1.1, "outcome: pass")
    t.close()
    lines = (tmp_path / "console.log").read_text().splitlines()
    assert lines == [
        "[    0.500] Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org)",
        "[    0.600] ### harness: milestone 'kernel' matched 'Linux version 6'",
        "[    0.700] Run /init as init process",
        "[    0.800] ### harness: milestone 'init' matched 'Run /init'",
        "[    0.900] login: ",
        "[    1.000] ### harness: milestone 'login' matched 'login: '",
        "[    1.100] ### harness: outcome: pass"]


def test_a_note_between_lines_is_written_at_once(tmp_path):
    t = Transcript(tmp_path, raw=False)
    t.write(b"", "one\n", 0.1)
    t.note(0.2, "sent 'x'")
    t.log.flush()
    assert (tmp_path / "console.log").read_text().splitlines()[-1].endswith("sent 'x'")
    t.close()
