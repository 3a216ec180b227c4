"""bin/check_vicireg_carriers: the Nagios/Icinga check's verdicts, perfdata and exit codes, on a report and
on a textfile as the status audit writes them (module_utils/vicireg_metrics)."""
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys

import vicireg_metrics as metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "bin", "check_vicireg_carriers")
_loader = importlib.machinery.SourceFileLoader("check_vicireg_carriers", BIN)
_spec = importlib.util.spec_from_loader(_loader.name, _loader)
check = importlib.util.module_from_spec(_spec)
_loader.exec_module(check)


def row(carrier, verdict, host="d1", state="Registered", cause=None):
    return {"host": host, "carrier": carrier, "protocol": "sip", "state": state, "verdict": verdict,
            "cause": cause, "seconds": 0.1}


GOOD = [row("a", "registered"), row("b", "reachable", state="OK (1 ms)"), row("c", "registered", host="d2")]


def run(*args):
    out = subprocess.run([sys.executable, BIN] + list(args), capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout


def report(tmp_path, rows):
    path = tmp_path / "registrations.json"
    path.write_text(json.dumps(rows))
    return str(path)


def test_all_good_is_ok_with_perfdata(tmp_path):
    code, out = run("--report", report(tmp_path, GOOD))
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("OK - 3 of 3 carriers registered or reachable on 2 dialer(s) | ")
    assert "registered=3;;;0;3 failed=0;;0;0;3 unqualified=0;;;0 conflicts=0;0;;0 age=" in first


def test_a_failing_carrier_is_critical_and_named_with_its_cause(tmp_path):
    rows = GOOD + [row("x", "failed", state="Rejected", cause="rejected by the carrier")]
    code, out = run("--report", report(tmp_path, rows))
    assert code == 2
    assert out.startswith("CRITICAL - 1 of 4 carriers failing: d1/x | registered=3;;;0;4 failed=1;;0;0;4")
    assert "d1/x (Rejected): rejected by the carrier" in out


def test_a_dialer_not_reached_is_critical(tmp_path):
    rows = GOOD + [{"host": "d3", "carrier": None, "protocol": None, "state": "not reached", "verdict": "failed",
                    "cause": "unreachable", "seconds": None}]
    assert run("--report", report(tmp_path, rows))[0] == 2


def test_conflicts_unqualified_and_stale_data_warn():
    code, line, details = check.evaluate(GOOD + [row("u", "unqualified", state="Unmonitored")], 1000, now=1000)
    assert code == 1 and line.startswith("WARNING - d1/u: unqualified") and "unqualified=1;;;0" in line
    rows = check.rows_from_report(json.dumps([row("a", "registered", cause="conflict: VICIdial's ...")]))
    code, line, _ = check.evaluate(rows, 1000, now=1000)
    assert code == 1 and "VICIdial registers the same user and host" in line and "conflicts=1;0;;0" in line
    code, line, _ = check.evaluate(GOOD, 1000, now=2000, max_age=900)
    assert code == 1 and "data is 1000s old (over --max-age 900s)" in line and "age=1000s;900;;0" in line
    code, line, _ = check.evaluate(GOOD + [row("x", "failed")], 1000, now=2000, max_age=900)
    assert code == 2 and "also: data is 1000s old" in line  # failing beats stale


def test_missing_or_unreadable_data_is_unknown(tmp_path):
    assert run("--report", str(tmp_path / "nope.json")) == (3, "UNKNOWN - cannot read %s: No such file or "
                                                              "directory\n" % (tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out = run("--report", str(bad))
    assert code == 3 and out.startswith("UNKNOWN - the report is not JSON")
    assert run()[0] == 3
    assert run("--report", report(tmp_path, GOOD), "--host", "d9")[1].startswith("UNKNOWN - no carrier data for d9")
    bad.write_text("vicireg_carrier_registered{host=\"d1\" 1\n")
    assert run("--textfile", str(bad))[0] == 3


def test_the_textfile_as_the_audit_writes_it(tmp_path):
    rows = [{"name": "a", "driver": "sip", "state": 'Odd "state"\n', "verdict": "registered", "conflicts": []},
            {"name": "b", "driver": "pjsip", "state": "Rejected", "verdict": "failed", "conflicts": []}]
    path = tmp_path / "vicireg_carriers.prom"
    path.write_text(metrics.textfile("d1", rows, now=1000))
    parsed, last = check.rows_from_textfile(path.read_text())
    assert last == 1000 and {r["carrier"]: r["state"] for r in parsed} == {"a": 'Odd "state"\n', "b": "Rejected"}
    code, line, _ = check.evaluate(parsed, last, now=1010)
    assert code == 2 and "d1/b" in line
    path.write_text(metrics.textfile("d1", rows[:1], now=1000))
    code, out = run("--textfile", str(path), "--max-age", "1e12")
    assert code == 0 and out.startswith("OK - 1 of 1 carriers")


def test_a_check_mode_plan_is_not_an_audit(tmp_path):
    rows = [row("a", "check mode", cause="would change"), row("b", "check mode", cause="unchanged")]
    code, out = run("--report", report(tmp_path, rows))
    assert code == 3 and out.startswith("UNKNOWN - the report is a --check plan"), out


def test_a_dialer_without_carriers_counts_and_its_asterisk_state_decides(tmp_path):
    up = tmp_path / "up.prom"
    up.write_text(metrics.textfile("d1", [], now=1000.0, asterisk_up=True))
    down = tmp_path / "down.prom"
    down.write_text(metrics.textfile("d1", [], now=1000.0, asterisk_up=False))
    code, line, _ = check.evaluate(*check.load(textfile=str(up)), now=1001.0)
    assert code == 0 and "0 of 0 carriers" in line and "on 1 dialer(s)" in line, line
    code, line, details = check.evaluate(*check.load(textfile=str(down)), now=1001.0)
    assert code == 2 and line.startswith("CRITICAL - 1 of 1 carriers failing: d1/-"), line
    assert details == ["d1/- (unavailable): Asterisk did not answer the status audit"]


def test_pipes_and_line_ends_in_names_and_causes_do_not_break_the_output(tmp_path):
    rows = [row("a|b", "failed", state="Rejected", cause="not reached | or\nit failed"), row("c", "registered")]
    code, out = run("--report", report(tmp_path, rows))
    first, *rest = out.splitlines()
    assert code == 2 and first.count("|") == 1 and first.startswith("CRITICAL - 1 of 2 carriers failing: d1/a b ")
    assert rest == ["d1/a b (Rejected): not reached or it failed"], rest


def test_data_from_the_future_warns(tmp_path):
    code, line, _ = check.evaluate(GOOD, 5000.0, now=1000.0)
    assert code == 1 and "in the future" in line, line


def test_a_non_finite_since_registration_is_left_out():
    text = metrics.textfile("d1", [{"name": "a", "driver": "sip", "state": "Registered", "verdict": "registered",
                                    "since_registration": float("nan")}], now=1000.0)
    assert "vicireg_carrier_seconds_since_registration" not in text and "vicireg_carrier_registered{" in text
