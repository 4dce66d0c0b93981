"""results -> junit.xml: one testcase per cell, milestone times as properties, and
after it one testcase per test its payload reported (class name: the cell's id).

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


def _sub_case(result: CellResult, c: dict[str, object]) -> TestCase:
    """A payload's test as a testcase under its cell (class name: the cell's id)."""
    case = TestCase(str(c["name"]), classname=result.cell_id)
    output = xml_safe(str(c.get("output") or "")) or None
    status = c["status"]
    if status == "failed":
        case.add_failure_info(f"failed (step {c['step']})", output)
    elif status == "error":
        case.add_error_info(f"error (step {c['step']})", output)
    elif status == "skipped":
        case.add_skipped_info(output or "skipped")
    elif status == "xfail":
        case.add_skipped_info(f"expected failure: {output or ''}".strip())
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
    cases: list[TestCase] = []
    owners: list[CellResult | None] = []  # the cell of each cell testcase; None: a test's
    for r in results:
        cases.append(_case(r, console_tail(run_folder, r)))
        owners.append(r)
        for c in r.cases:
            cases.append(_sub_case(r, c))
            owners.append(None)
    suite = TestSuite(f"guest-harness {run_id}", cases)
    tree = suite.build_xml_doc()
    for element, result in zip(tree.iter("testcase"), owners, strict=True):
        if result is None:
            continue
        props = ET.Element("properties")
        items = [("verdict", str(result.verdict)), ("score", f"{result.score:.3f}")]
        items += [(f"milestone.{m.name}", f"{m.t:.3f}") for m in result.milestones if m.reached]
        items += [(f"tests.{k}", str(v)) for k, v in (result.tests or {}).items()]
        for key, value in items:
            ET.SubElement(props, "property", name=key, value=value)
        element.insert(0, props)
    suites = ET.Element("testsuites")
    suites.append(tree)
    atomic_write(path, ET.tostring(suites, encoding="utf-8", xml_declaration=True))
