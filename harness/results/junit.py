"""results -> junit.xml: one testcase per cell, milestone times as properties.

Built with junit-xml; testcase-level <properties> (which Jenkins and GitLab
read, but junit-xml does not model) are added to its element tree.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from junit_xml import TestCase, TestSuite

from ..files import atomic_write
from ..model import CellResult, Verdict

TAIL_CHARS = 8000
# characters XML 1.0 cannot carry at all (not even escaped): a console's control
# bytes (the Debian installer's SO/SI charset switches) would make junit.xml unreadable
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_safe(text: str | None) -> str | None:
    return None if text is None else _NOT_XML.sub("\ufffd", text)


def _case(result: CellResult, tail: str) -> TestCase:
    classname = result.guest
    name = f"{result.backend}/{result.firmware}"
    case = TestCase(name, classname=classname, elapsed_sec=result.duration_s,
                    stdout=xml_safe(tail) or None)
    message = xml_safe(f"{result.verdict}: {result.reason}" if result.reason
                       else str(result.verdict))
    if result.verdict is Verdict.SKIP:
        case.add_skipped_info(message)
    elif result.verdict is Verdict.ERROR:
        case.add_error_info(message)
    elif result.verdict.is_failure(strict=True):
        case.add_failure_info(message, xml_safe(result.failure["text"]) if result.failure
                              else None)
    return case


def console_tail(run_folder: Path, result: CellResult, chars: int = TAIL_CHARS) -> str:
    """The end of a cell's console log (read from disk, bounded)."""
    rel = result.artifacts.get("console")
    if not rel:
        return ""
    try:
        with (run_folder / rel).open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - chars * 2))
            return f.read().decode("utf-8", "replace")[-chars:]
    except OSError:
        return ""


def write_junit(path: Path, run_id: str, results: list[CellResult], run_folder: Path) -> None:
    cases = [_case(r, console_tail(run_folder, r)) for r in results]
    suite = TestSuite(f"guest-harness {run_id}", cases)
    tree = suite.build_xml_doc()
    for element, result in zip(tree.iter("testcase"), results, strict=True):
        props = ET.Element("properties")
        items = [("verdict", str(result.verdict)), ("score", f"{result.score:.3f}")]
        items += [(f"milestone.{m.name}", f"{m.t:.3f}") for m in result.milestones if m.reached]
        for key, value in items:
            ET.SubElement(props, "property", name=key, value=value)
        element.insert(0, props)
    suites = ET.Element("testsuites")
    suites.append(tree)
    atomic_write(path, ET.tostring(suites, encoding="utf-8", xml_declaration=True))
