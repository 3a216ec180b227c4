"""playbooks/status.yml against the real lab: read-only (no file, reload or lock touched on Asterisk's side),
exit status, the report, the node_exporter textfile read with prometheus_client, the Nagios check, a
carrier broken at the carrier (Kamailio answers 403), a VICIdial conflict, a held lock, --limit, --check.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import labtools
from labkit import registrar

CHECK = os.path.join(labtools.ROOT, "bin", "check_vicireg_carriers")
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # the role's default (Debian's)
TEXTFILE = os.path.join(TEXTFILE_DIR, "vicireg_carriers.prom")
LOCK = "/run/lock/vicireg-carriers.lock"


def flat(out):
    return " ".join(out.stdout.split())


def in_root(d, path):
    return os.path.join(d["root"], path.lstrip("/"))


def rx(d, command):
    return subprocess.run(["chroot", d["root"], "asterisk", "-rx", command], capture_output=True, text=True,
                          timeout=20).stdout


def status(*args):
    return labtools.run_playbook(*args, playbook="playbooks/status.yml")


def check(*args):
    out = subprocess.run([sys.executable, CHECK] + list(args), capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout


def metrics(d):
    """{metric: {carrier or None: (labels, value)}} of the dialer's textfile, parsed by prometheus_client."""
    with open(in_root(d, TEXTFILE)) as handle:
        text = handle.read()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[s.labels.get("carrier")] = (s.labels, s.value)
    return out


def dialer_state(d):
    """What a read-only audit must leave alone: every file under /etc/asterisk (content, mode, owner,
    mtime), when Asterisk last reloaded, and the lock file."""
    files = {}
    base = in_root(d, "/etc/asterisk")
    for folder, _dirs, names in os.walk(base):
        for name in names:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, base)] = (hashlib.sha256(handle.read()).hexdigest(), info.st_mode,
                                                      info.st_uid, info.st_gid, info.st_mtime_ns)
    text = rx(d, "core show uptime seconds")
    last = [int(line.split(":")[1]) for line in text.splitlines() if line.startswith("Last reload:")]
    assert last, text
    lock = in_root(d, LOCK)
    lock_state = None
    if os.path.exists(lock):
        with open(lock) as handle:
            lock_state = (handle.read(), os.stat(lock).st_mtime_ns)
    return {"files": files, "reloaded_at": time.time() - last[0], "lock": lock_state}


def assert_untouched(before, after):
    assert after["files"] == before["files"]
    assert abs(after["reloaded_at"] - before["reloaded_at"]) < 3, "Asterisk was reloaded"
    assert after["lock"] == before["lock"]


def registration(d, name):
    for line in rx(d, "pjsip show registrations").splitlines():
        if line.strip().startswith(name + "/"):
            return line.split()[2]
    return None


def wait_registration(d, name, state, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if registration(d, name) == state:
            return
        time.sleep(0.2)
    raise AssertionError("%s on %s never became %s (now %s)" % (name, d["name"], state, registration(d, name)))


@pytest.fixture(scope="module")
def lab():
    """Both dialers as the lab inventory has them (site.yml green), with node_exporter's textfile directory
    made in each (removed afterwards)."""
    facts = labtools.facts()
    dialers = {d["name"]: d for d in facts["dialers"]}
    made = []
    for d in dialers.values():
        # The highest missing folder of the path is what gets removed afterwards.
        top = in_root(d, TEXTFILE_DIR)
        while not os.path.isdir(os.path.dirname(top)):
            top = os.path.dirname(top)
        if not os.path.isdir(in_root(d, TEXTFILE_DIR)):
            os.makedirs(in_root(d, TEXTFILE_DIR))
            made.append(top)
    out = labtools.run_playbook()
    assert out.returncode == 0, out.stdout[-3000:]
    yield {"facts": facts, "d16": labtools.dialer(facts, 16), "d22": labtools.dialer(facts, 22),
           "secrets": [a["password"] for d in dialers.values() for a in d["accounts"].values()]}
    for path in made:
        shutil.rmtree(path)


@pytest.fixture
def broken(lab):
    """The a16 dialer's PJSIP carrier refused by the carrier (Kamailio answers its REGISTER with 403),
    nothing changed on the dialer; the carrier is let in and registered again afterwards."""
    d, user = lab["d16"], lab["d16"]["accounts"]["pjsip"]["username"]
    registrar.kamcmd("htable.seti", "forbid", user, "1")
    try:
        rx(d, "pjsip send register labpjsip-reg")
        wait_registration(d, "labpjsip-reg", "Rejected")
        yield d
    finally:
        registrar.kamcmd("htable.delete", "forbid", user)
        rx(d, "pjsip send register labpjsip-reg")
        wait_registration(d, "labpjsip-reg", "Registered")


def test_all_good_exits_0_and_check_is_ok(lab):
    before = {n: dialer_state(lab[n]) for n in ("d16", "d22")}
    start = time.time()
    out = status()
    assert out.returncode == 0, out.stdout[-3000:]
    assert {r["verdict"] for r in out.report} == {"registered", "reachable"}
    assert len(out.report) == 11 and {r["host"] for r in out.report} == {"lab-a16-01", "lab-a22-02"}
    for n in ("d16", "d22"):
        assert_untouched(before[n], dialer_state(lab[n]))
        m = metrics(lab[n])
        assert {c: v for c, (_l, v) in m["vicireg_carrier_registered"].items()} == {
            r["carrier"]: 1.0 for r in out.report if r["host"] == lab[n]["name"]}
        assert start - 5 <= m["vicireg_status_last_run_timestamp_seconds"][None][1] <= time.time() + 5
        assert m["vicireg_status_drift"][None][1] == 0
        assert os.stat(in_root(lab[n], TEXTFILE)).st_mode & 0o777 == 0o644
    # chan_sip shows when it last registered; PJSIP and IAX2 do not, and no value stands in for them.
    since = metrics(lab["d16"])["vicireg_carrier_seconds_since_registration"]
    assert set(since) == {"labsip", "labauth", "lablong"} and all(0 <= v < 3600 for _l, v in since.values())
    assert "vicireg_carrier_seconds_since_registration" not in metrics(lab["d22"])
    code, text = check("--report", labtools.REPORT)
    assert code == 0 and text.startswith("OK - 11 of 11 carriers registered or reachable on 2 dialer(s) | "
                                         "registered=11;;;0;11 failed=0;"), text
    assert check("--textfile", in_root(lab["d22"], TEXTFILE))[0] == 0
    assert not any(s in out.stdout + out.stderr for s in lab["secrets"])


def test_a_carrier_refused_by_the_carrier_fails_the_run_and_nothing_is_touched(lab, broken):
    before = {n: dialer_state(lab[n]) for n in ("d16", "d22")}
    out = status()
    assert out.returncode != 0
    rows = {(r["host"], r["carrier"]): r for r in out.report}
    bad = rows[("lab-a16-01", "labpjsip")]
    assert (bad["state"], bad["verdict"]) == ("Rejected", "failed")
    assert bad["cause"].startswith("rejected by the carrier")
    assert all(r["verdict"] in ("registered", "reachable") for k, r in rows.items() if k != ("lab-a16-01", "labpjsip"))
    assert "lab-a16-01: carrier labpjsip (pjsip): state Rejected: rejected by the carrier" in flat(out)
    for n in ("d16", "d22"):
        assert_untouched(before[n], dialer_state(lab[n]))
    m16, m22 = metrics(lab["d16"]), metrics(lab["d22"])
    labels, value = m16["vicireg_carrier_registered"]["labpjsip"]
    assert value == 0 and labels == {"host": "lab-a16-01", "carrier": "labpjsip", "protocol": "pjsip",
                                     "state": "Rejected", "verdict": "failed"}
    assert {c for c, (_l, v) in m16["vicireg_carrier_registered"].items() if v == 1} == {
        "labsip", "labauth", "lablong", "labiax", "labipauth"}
    assert all(v == 1 for _l, v in m22["vicireg_carrier_registered"].values())
    code, text = check("--report", labtools.REPORT)
    assert code == 2 and text.startswith("CRITICAL - 1 of 11 carriers failing: lab-a16-01/labpjsip | "
                                         "registered=10;;;0;11 failed=1;;0;0;11"), text
    assert "lab-a16-01/labpjsip (Rejected): rejected by the carrier" in text
    assert check("--textfile", in_root(lab["d16"], TEXTFILE))[0] == 2
    assert check("--textfile", in_root(lab["d22"], TEXTFILE))[0] == 0
    # Only the dialers in the run count: the other dialer alone is green.
    out = status("--limit", "lab-a22-02")
    assert out.returncode == 0, out.stdout[-3000:]
    assert {r["host"] for r in out.report} == {"lab-a22-02"}
    assert check("--report", labtools.REPORT)[0] == 0


def test_a_vicidial_registration_of_the_same_user_and_host_is_a_conflict(lab):
    d = lab["d16"]
    path = in_root(d, "/etc/asterisk/sip-vicidial.conf")
    saved = path + ".vicireg-test"
    shutil.copy2(path, saved)
    try:
        with open(path, "a") as handle:
            handle.write("register => %s:not-the-secret@%s:5060/%s\n" % (
                d["accounts"]["sip"]["username"], lab["facts"]["sip_carrier"]["address"],
                d["accounts"]["sip"]["username"]))
        out = status("--limit", d["name"])
        assert out.returncode == 0, out.stdout[-3000:]  # a conflict warns, it does not fail the audit
        rows = {r["carrier"]: r for r in out.report}
        assert rows["labsip"]["verdict"] == "registered"
        assert "conflict: VICIdial's sip-vicidial.conf (line" in rows["labsip"]["cause"]
        assert "also registers d1sip@127.0.0.10:5060" in rows["labsip"]["cause"]
        # (the YAML callback doubles the quote in VICIdial's)
        assert "lab-a16-01: conflict: VICIdial" in flat(out) and "sip-vicidial.conf (line" in flat(out)
        assert "not-the-secret" not in out.stdout
        conflict = metrics(d)["vicireg_carrier_conflict"]
        assert {c for c, (_l, v) in conflict.items() if v == 1} == {"labsip"}
        code, text = check("--report", labtools.REPORT)
        assert code == 1 and text.startswith("WARNING - lab-a16-01/labsip: VICIdial registers the same user"), text
        assert check("--textfile", in_root(d, TEXTFILE))[0] == 1
        # site.yml names the same conflict in its plan, and goes on (nothing to change here: exit 0)
        site = labtools.run_playbook("--limit", d["name"])
        assert site.returncode == 0, site.stdout[-3000:]
        assert "lab-a16-01: conflict: VICIdial" in flat(site) and "also registers d1sip@127.0.0.10:5060" in flat(site)
        assert "not-the-secret" not in site.stdout
    finally:
        shutil.copy2(saved, path)
        os.remove(saved)


def test_a_run_holding_the_lock_is_named_and_its_lock_left_alone(lab):
    d = lab["d22"]
    path = in_root(d, LOCK)
    holder = {"run": "elsewhere:1-1", "controller": "elsewhere", "pid": 1, "user": "ci", "play": "site",
              "since": time.time(), "expires": time.time() + 120}
    saved = None
    if os.path.exists(path):
        with open(path) as handle:
            saved = handle.read()
    with open(path, "w") as handle:
        json.dump(holder, handle)
    try:
        before = dialer_state(d)
        out = status("--limit", d["name"])
        assert out.returncode == 0, out.stdout[-3000:]  # nothing waited for: the audit ran at once
        assert out.seconds < 60
        assert_untouched(before, dialer_state(d))
        assert all("lock: another run holds this dialer (run elsewhere:1-1" in r["cause"] for r in out.report)
    finally:
        if saved is None:
            os.remove(path)
        else:
            with open(path, "w") as handle:
                handle.write(saved)


def test_check_mode_audits_alike_and_writes_no_textfile(lab):
    d = lab["d22"]
    os.remove(in_root(d, TEXTFILE))
    before = dialer_state(d)
    out = status("--limit", d["name"], "--check")
    assert out.returncode == 0, out.stdout[-3000:]
    assert {r["verdict"] for r in out.report} == {"registered", "reachable"}
    assert not os.path.exists(in_root(d, TEXTFILE))
    assert_untouched(before, dialer_state(d))
    # An inventory carrier the dialer does not have is drift, and fails the audit in --check too.
    extra = {"name": "labnew", "protocol": "iax2", "registration": "{{ lab_accounts.iax2.username }}:"
             "{{ lab_accounts.iax2.password }}@{{ lab_iax_carrier }}"}
    out = labtools.run_playbook("--limit", d["name"], "--check", "-e", json.dumps(
        {"carriers": "{{ lab_common_carriers + lab_a22_carriers + [lab_test_extra] }}", "lab_test_extra": extra}),
        playbook="playbooks/status.yml")
    assert out.returncode != 0
    row = {r["carrier"]: r for r in out.report}["labnew"]
    assert row["verdict"] == "failed" and row["cause"].startswith("not on the dialer: the inventory has it")
    assert "drift: the dialer" in flat(out) and "differ from what the inventory renders (added: labnew" in flat(out)


def test_an_asterisk_that_does_not_answer_fails_every_carrier_and_says_so_in_the_metrics(lab):
    d = lab["d22"]
    # `asterisk -rx` failing as it does when Asterisk is down, without stopping the shared lab's Asterisk.
    out = status("--limit", d["name"], "-e", "vicireg_carriers_asterisk_bin=/bin/false")
    assert out.returncode != 0
    assert {(r["state"], r["verdict"]) for r in out.report} == {("unavailable", "failed")}
    assert all("failed with exit code 1" in r["cause"] for r in out.report)
    m = metrics(d)
    assert m["vicireg_status_asterisk_up"][None][1] == 0
    assert {v for _l, v in m["vicireg_carrier_registered"].values()} == {0}
    code, text = check("--textfile", in_root(d, TEXTFILE))
    assert code == 2 and text.startswith("CRITICAL - 5 of 5 carriers failing"), text
    assert labtools.run_playbook("--limit", d["name"], playbook="playbooks/status.yml").returncode == 0
