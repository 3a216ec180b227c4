"""The run's report: every host listed, 'not reached' rows replaced by verdicts, another run's report
never merged, JSON and JUnit written atomically."""
import json
import os
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vicireg_report as report

PENDING = "not reached: the run stopped before this dialer was judged"


def row(host, carrier, verdict="registered", state="Registered", cause=None, seconds=0.5, **extra):
    out = {"host": host, "carrier": carrier, "protocol": "sip", "state": state, "verdict": verdict,
           "cause": cause, "seconds": seconds}
    out.update(extra)
    return out


def by_host(rows):
    out = {}
    for r in rows:
        out.setdefault(r["host"], []).append(r)
    return out


def test_the_start_of_a_run_lists_every_host_as_not_reached_and_failed():
    rows = report.merge([], ["d2", "d1"], [], [], PENDING)
    assert rows == [{"host": h, "carrier": None, "protocol": None, "state": "not reached", "verdict": "failed",
                     "cause": PENDING, "seconds": None} for h in ("d1", "d2")]


def test_a_host_never_judged_keeps_a_failed_not_reached_row_with_the_latest_cause():
    start = report.merge([], ["d1", "d2", "d3"], [], [], "pending")
    later = report.merge(start, ["d1", "d2", "d3"], ["d1"], [row("d1", "acme")], "d2 and d3 unreachable")
    hosts = by_host(later)
    assert [r["carrier"] for r in hosts["d1"]] == ["acme"]
    for h in ("d2", "d3"):
        assert hosts[h] == [{"host": h, "carrier": None, "protocol": None, "state": "not reached",
                             "verdict": "failed", "cause": "d2 and d3 unreachable", "seconds": None}]


def test_a_later_call_replaces_the_not_reached_row_and_keeps_earlier_verdicts():
    first = report.merge(report.merge([], ["d1", "d2"], [], [], "pending"), ["d1", "d2"], ["d1"],
                         [row("d1", "acme"), row("d1", "bad", verdict="failed", state="Rejected", cause="refused")],
                         "pending")
    second = report.merge(first, ["d1", "d2"], ["d2"], [row("d2", "iaxco", seconds=1.25)], "pending")
    assert [(r["host"], r["carrier"], r["verdict"]) for r in second] == [
        ("d1", "acme", "registered"), ("d1", "bad", "failed"), ("d2", "iaxco", "registered")]
    assert not any(r["state"] == "not reached" for r in second)


def test_judging_a_host_again_replaces_its_rows():
    first = report.merge([], ["d1"], ["d1"], [row("d1", "acme", verdict="failed", state="Timeout")], "p")
    second = report.merge(first, ["d1"], ["d1"], [row("d1", "acme"), row("d1", "new")], "p")
    assert [(r["carrier"], r["verdict"]) for r in second] == [("acme", "registered"), ("new", "registered")]


def test_a_judged_host_without_carriers_says_so():
    rows = report.merge([], ["d1"], ["d1"], [], "p")
    assert rows == [{"host": "d1", "carrier": None, "protocol": None, "state": "no active carrier",
                     "verdict": "none", "cause": None, "seconds": None}]


def test_rows_keep_only_the_report_fields():
    rows = report.merge([], ["d1"], ["d1"], [row("d1", "acme", secret="Zq9", extra=1)], "p")
    assert set(rows[0]) == set(report.FIELDS)


@settings(max_examples=200, deadline=None)
@given(hosts=st.lists(st.sampled_from(["d1", "d2", "d3", "d4"]), min_size=1, max_size=4, unique=True),
       calls=st.lists(st.lists(st.sampled_from(["d1", "d2", "d3", "d4"]), max_size=3, unique=True), max_size=4))
def test_every_host_of_the_run_has_rows_after_any_sequence_of_calls(hosts, calls):
    rows = report.merge([], hosts, [], [], "pending")
    judged_ever = set()
    for judged in calls:
        judged = [h for h in judged if h in hosts]
        judged_ever |= set(judged)
        rows = report.merge(rows, hosts, judged, [row(h, "c-" + h) for h in judged], "pending")
    present = by_host(rows)
    assert set(present) == set(hosts)
    for h in hosts:
        if h in judged_ever:
            assert [r["carrier"] for r in present[h]] == ["c-" + h]
        else:
            assert [r["state"] for r in present[h]] == ["not reached"] and present[h][0]["verdict"] == "failed"


def test_load_returns_this_runs_rows_only(tmp_path):
    rows = report.merge([], ["d1", "d2"], ["d1"], [row("d1", "acme")], "pending")
    paths = report.write(str(tmp_path), "run-1", rows)
    assert [os.path.basename(p) for p in paths] == [report.JSON_NAME, report.JUNIT_NAME]
    assert report.load(str(tmp_path), "run-1") == rows
    assert report.load(str(tmp_path), "run-2") == []
    assert report.load(str(tmp_path / "missing"), "run-1") == []
    (tmp_path / report.JSON_NAME).write_text("{not json")
    assert report.load(str(tmp_path), "run-1") == []
    (tmp_path / report.JSON_NAME).write_text('{"a": 1}')
    assert report.load(str(tmp_path), "run-1") == []


def test_a_report_left_by_another_run_is_replaced_not_merged(tmp_path):
    report.write(str(tmp_path), "old-run", [row("stale", "old")])
    existing = report.load(str(tmp_path), "new-run")
    rows = report.merge(existing, ["d1"], [], [], "pending")
    report.write(str(tmp_path), "new-run", rows)
    on_disk = json.loads((tmp_path / report.JSON_NAME).read_text())
    assert [r["host"] for r in on_disk] == ["d1"]
    assert (tmp_path / report.RUN_NAME).read_text() == "new-run\n"
    assert [n for n in os.listdir(tmp_path) if n.startswith(".vicireg-")] == []


def test_junit_counts_failures_and_escapes_causes():
    rows = report.merge([], ["d1", "d2"], ["d1"], [
        row("d1", "acme", seconds=0.25),
        row("d1", "bad", verdict="failed", state="Rejected", cause='credentials <refused> & "quoted"', seconds=1.5)],
        "unreachable")
    root = ET.fromstring(report.report_junit(rows).split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "2" and suite.get("time") == "1.750"
    failures = {c.get("name"): c.find("failure") for c in suite.findall("testcase")}
    assert failures["acme (sip)"] is None
    assert failures["bad (sip)"].get("message") == 'credentials <refused> & "quoted"'
    assert failures["- (-)"].get("message") == "unreachable" and failures["- (-)"].text == "state: not reached"


def test_junit_stays_well_formed_with_control_characters_in_a_cause():
    rows = [row("d1", "acme", verdict="failed", state="Auth. Sent\x01", cause="\x1b[31mrefused\x1b[0m")]
    ET.fromstring(report.report_junit(rows).split("\n", 1)[1])


def test_table_lists_every_row_and_the_cause_of_failures():
    rows = report.merge([], ["d1", "d2"], ["d1"], [row("d1", "acme", seconds=0.5),
                                                   row("d1", "bad", verdict="failed", cause="refused")], "unreachable")
    lines = report.report_table(rows)
    assert lines[0].split() == ["HOST", "CARRIER", "PROTOCOL", "STATE", "SECONDS", "VERDICT", "/", "CAUSE"]
    assert any(line.startswith("d1") and "acme" in line and "0.50" in line for line in lines)
    assert any("bad" in line and line.endswith("failed: refused") for line in lines)
    assert any(line.startswith("d2") and line.endswith("failed: unreachable") for line in lines)
    assert report.report_table([])[-1] == "(no carriers judged)"
