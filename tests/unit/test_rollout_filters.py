"""The role's rollout filters: plan lines, lock notes, not-reached rows, and their place in the report."""
import xml.etree.ElementTree as ET

import carriers as f  # filter_plugins/carriers.py
import vicireg_report as report

CHANGE = {"added": ["a1"], "changed": ["c1", "c2"], "removed": [], "files": ["vicireg-sip-peers.conf"],
          "drivers": ["sip"]}


def test_change_lines_name_every_dialer_with_a_change_and_only_those():
    hv = {"d1": {"vicireg_carriers_snapshot": {"noop": False, "change": CHANGE,
                                                "unwritten": ["vicireg-sip-peers.conf", "sip.conf"]}},
          "d2": {"vicireg_carriers_snapshot": {"noop": True, "change": dict(CHANGE, added=[])}},
          "d3": {"vicireg_carriers_snapshot": {}}, "d4": {}}
    assert f.vicireg_change_lines(["d1", "d2", "d3", "d4"], hv) == [
        "d1: added: a1; changed: c1, c2; removed: -; files: vicireg-sip-peers.conf, sip.conf; reload: sip"]


def test_change_lines_name_vicidial_conflicts_of_every_dialer_change_or_not():
    text = "conflict: VICIdial's sip-vicidial.conf (line 3) also registers 1234@h:5060; ..."
    hv = {"d1": {"vicireg_carriers_snapshot": {"noop": True, "change": dict(CHANGE, added=[]),
                                                "conflicts": [text]}},
          "d2": {"vicireg_carriers_snapshot": {"noop": False, "change": CHANGE, "unwritten": [], "conflicts": []}}}
    assert f.vicireg_change_lines(["d1", "d2"], hv) == [
        "d1: " + text, "d2: added: a1; changed: c1, c2; removed: -; files: -; reload: sip"]


def test_lock_notes_say_who_was_waited_for_and_whose_lock_was_taken_over():
    hv = {"d1": {"vicireg_carriers_snapshot": {"lock_waited_for": "run X"}},
          "d2": {"vicireg_carriers_snapshot": {"lock_taken_over_text": "run Y"}}, "d3": {}}
    assert f.vicireg_lock_notes(["d1", "d2", "d3"], hv) == [
        "d1: waited for another run (run X)", "d2: took over the lock of a run that is gone (run Y)"]


def test_not_reached_is_its_own_verdict_and_a_skipped_case_in_junit():
    rows = f.vicireg_not_reached([{"name": "c1", "driver": "sip"}], "the rollout stopped: d1 failed")
    assert rows == [{"name": "c1", "driver": "sip", "state": "not reached", "verdict": "not reached",
                     "cause": "the rollout stopped: d1 failed", "seconds": None}]
    table = report.report_rows({"d2": rows, "d1": [{"name": "c1", "driver": "sip", "state": "Rejected",
                                                   "verdict": "failed", "cause": "no", "seconds": 1.0}]})
    suite = ET.fromstring(report.report_junit(table)).find("testsuite")
    assert suite.get("failures") == "1" and len(suite.findall("testcase/skipped")) == 1
    assert suite.find("testcase/skipped").get("message") == "the rollout stopped: d1 failed"


def test_problem_rows_of_every_dialer_name_host_and_carrier():
    hv = {"d1": {"carriers": [{"name": "ok1", "registration": "u:p@h.example"}]},
          "d2": {"carriers": [{"name": "bad one", "registration": "u:p@h.example"}]}, "d3": {}}
    rows = f.vicireg_problem_rows_of(["d1", "d2", "d3"], hv)
    assert {r["host"] for r in rows} == {"d2", "d3"}
    assert all(r["verdict"] == "failed" and r["state"] == "refused by the preflight" for r in rows)
