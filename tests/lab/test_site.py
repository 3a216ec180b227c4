"""site.yml against the real lab: registered, wrong secret, wrong port, IP auth, Active=N, no-op, check mode.

Each scenario runs the real playbook over SSH against the Asterisk 16 dialer (chan_sip, PJSIP, IAX2)
with a carrier list given as extra vars, then reads the dialer's real state back.
"""
import os
import re
import subprocess
import sys
import time


import labtools



def carriers(lab, **changes):
    """The a16 dialer's carriers as the lab inventory has them, with per-carrier changes."""
    acc = lab["d16"]["accounts"]
    kam = lab["facts"]["sip_carrier"]["address"]
    iax = lab["facts"]["iax_carrier"]["address"]
    base = {
        "labsip": {"protocol": "sip", "registration": "register => %s:%s@%s:5060/%s" % (
            acc["sip"]["username"], acc["sip"]["password"], kam, acc["sip"]["username"])},
        "labpjsip": {"protocol": "pjsip", "registration": "register => %s:%s@%s:5060/%s" % (
            acc["pjsip"]["username"], acc["pjsip"]["password"], kam, acc["pjsip"]["username"])},
        "labiax": {"protocol": "iax2", "registration": "register => %s:%s@%s" % (
            acc["iax2"]["username"], acc["iax2"]["password"], iax)},
        "labipauth": {"protocol": "sip", "host": kam, "port": 5060},
    }
    out = []
    for name, item in base.items():
        change = changes.get(name, {})
        if change is None:
            continue
        merged = dict(item, name=name, timeout=8)
        merged.update(change)
        out.append(merged)
    for name, item in changes.items():
        if name not in base and item is not None:
            out.append(dict(item, name=name))
    return out


def playbook(lab, carrier_list, *args):
    """site.yml limited to the Asterisk 16 dialer, as an operator limits a run to one dialer."""
    out = labtools.run_playbook("--limit", lab["name"], *args, carriers=carrier_list)
    out.report = {r["carrier"]: r for r in out.report or [] if r["host"] == lab["name"]}
    return out


def rx(lab, command):
    return subprocess.run(["chroot", lab["root"], "asterisk", "-rx", command], capture_output=True, text=True,
                          timeout=20).stdout


def conf(lab, name):
    path = os.path.join(lab["root"], "etc", "asterisk", name)
    with open(path) as handle:
        return handle.read()


def secrets(lab):
    return [a["password"] for a in lab["d16"]["accounts"].values()]


def test_all_protocols_registered_and_report_written(lab):
    out = playbook(lab, carriers(lab))
    assert out.returncode == 0, out.stdout[-3000:]
    rep = out.report
    assert {k: rep[k]["verdict"] for k in rep} == {"labsip": "registered", "labpjsip": "registered",
                                                   "labiax": "registered", "labipauth": "reachable"}
    assert set(rep["labsip"]) == {"host", "carrier", "protocol", "state", "verdict", "cause", "seconds"}
    assert re.search(r"d1sip\s+\d+\s+Registered", rx(lab, "sip show registry"))
    assert re.search(r"labpjsip-reg/\S+\s+\S+\s+Registered", rx(lab, "pjsip show registrations"))
    assert "HOST" in out.stdout and "labipauth" in out.stdout  # the table
    with open(os.path.join(labtools.ROOT, "reports", "registrations.junit.xml")) as handle:
        assert 'failures="0"' in handle.read()


def test_second_identical_run_changes_and_reloads_nothing(lab):
    playbook(lab, carriers(lab))
    before = rx(lab, "sip show registry")
    regtime = re.search(r"d1sip .*Registered\s+(.+)$", before, re.MULTILINE).group(1)
    mtimes = {n: os.stat(os.path.join(lab["root"], "etc/asterisk", n)).st_mtime
              for n in ("vicireg-sip-register.conf", "vicireg-pjsip.conf", "sip.conf")}
    time.sleep(1.1)
    out = playbook(lab, carriers(lab))
    assert out.returncode == 0, out.stdout[-3000:]
    assert re.search(r"%s\s*:\s*ok=\d+\s+changed=0\s" % lab["name"], out.stdout), out.stdout[-1500:]
    assert "no change" in out.stdout
    after = rx(lab, "sip show registry")
    # No reload: chan_sip did not re-register (same registration time), files untouched.
    assert re.search(r"d1sip .*Registered\s+(.+)$", after, re.MULTILINE).group(1) == regtime
    for n, m in mtimes.items():
        assert os.stat(os.path.join(lab["root"], "etc/asterisk", n)).st_mtime == m, n


def test_wrong_secret_fails_with_cause_and_rolls_back(lab):
    playbook(lab, carriers(lab))
    good = conf(lab, "vicireg-sip-register.conf")
    bad = carriers(lab, labsip={"registration": "register => %s:WrongSecret-Zq9@%s:5060/%s" % (
        lab["d16"]["accounts"]["sip"]["username"], lab["facts"]["sip_carrier"]["address"],
        lab["d16"]["accounts"]["sip"]["username"])})
    out = playbook(lab, bad, "-vvv")
    assert out.returncode != 0
    rep = out.report
    assert rep["labsip"]["verdict"] == "failed"
    assert rep["labsip"]["state"] == "Auth. Sent" and "credentials refused" in rep["labsip"]["cause"]
    assert rep["labsip"]["seconds"] < 5.0  # a wrong-secret verdict within 5 s of the reload
    assert re.search(r"lab-a16-01: carrier labsip \(sip\): state Auth. Sent: credentials refused", out.stdout)
    assert re.search(r"Rolled back to the previous files; registered again: [a-z, ]*\blabsip\b", out.stdout)
    # The last working file is back and chan_sip registers with it again.
    assert conf(lab, "vicireg-sip-register.conf") == good
    assert re.search(r"d1sip\s+\d+\s+Registered", rx(lab, "sip show registry"))
    # Untouched carriers kept working.
    assert re.search(r"labpjsip-reg/\S+\s+\S+\s+Registered", rx(lab, "pjsip show registrations"))
    # No secret anywhere in the -vvv output, the new wrong one included.
    for secret in secrets(lab) + ["WrongSecret-Zq9"]:
        assert secret not in out.stdout and secret not in out.stderr, "secret leaked"
    with open(labtools.REPORT) as handle:
        text = handle.read()
    assert not any(s in text for s in secrets(lab) + ["WrongSecret-Zq9"])


def test_wrong_port_fails_as_no_answer_within_timeout(lab):
    playbook(lab, carriers(lab))
    acc = lab["d16"]["accounts"]["pjsip"]
    bad = carriers(lab, labpjsip={"timeout": 6, "registration": "%s:%s@%s:5099/%s" % (
        acc["username"], acc["password"], lab["facts"]["sip_carrier"]["address"], acc["username"])})
    out = playbook(lab, bad)
    assert out.returncode != 0
    rep = out.report["labpjsip"]
    assert rep["verdict"] == "failed" and "no answer from the carrier at 127.0.0.10:5099" in rep["cause"]
    assert 6.0 <= rep["seconds"] <= 8.0  # within its timeout + 2 s
    assert re.search(r"labpjsip-reg/sip:127.0.0.10\s+\S+\s+Registered", rx(lab, "pjsip show registrations"))


def test_ip_auth_unreachable_fails_reachable_passes(lab):
    playbook(lab, carriers(lab))
    out = playbook(lab, carriers(lab, labipauth={"host": "127.0.0.19", "port": 5099, "timeout": 8}))
    assert out.returncode != 0
    rep = out.report["labipauth"]
    assert rep["verdict"] == "failed" and "unreachable" in rep["cause"], rep
    out = playbook(lab, carriers(lab))
    assert out.returncode == 0, out.stdout[-2000:]
    assert out.report["labipauth"]["verdict"] == "reachable"
    assert out.report["labipauth"]["state"].startswith("OK")


def test_active_n_removes_the_carrier(lab):
    playbook(lab, carriers(lab))
    out = playbook(lab, carriers(lab, labiax={"active": False}))
    assert out.returncode == 0, out.stdout[-2000:]
    assert "removed: labiax" in out.stdout
    assert "labiax" not in out.report
    assert "vicireg:begin labiax" not in conf(lab, "vicireg-iax-register.conf")
    assert not re.search(r"\bd1iax\b", rx(lab, "iax2 show registry"))
    out = playbook(lab, carriers(lab))
    assert out.returncode == 0
    assert re.search(r"\bd1iax\b.*Registered", rx(lab, "iax2 show registry"))


def test_check_mode_touches_nothing_and_masks_secrets(lab):
    playbook(lab, carriers(lab))
    before = {n: conf(lab, n) for n in ("vicireg-sip-register.conf", "vicireg-sip-peers.conf", "sip.conf")}
    acc = lab["d16"]["accounts"]["sip"]
    changed = carriers(lab, labsip={"registration": "%s:NewSecret-Zq9@%s:5080/%s" % (
        acc["username"], lab["facts"]["sip_carrier"]["address"], acc["username"])})
    out = playbook(lab, changed, "--check", "--diff")
    assert out.returncode == 0, out.stdout[-2000:]
    assert "changed: labsip" in out.stdout
    # --diff shows the change with the secret masked.
    assert "+register => %s:****@127.0.0.10:5080" % acc["username"] in out.stdout, out.stdout[-3000:]
    assert "-port=5060" in out.stdout and "+port=5080" in out.stdout
    assert "NewSecret-Zq9" not in out.stdout and not any(s in out.stdout for s in secrets(lab))
    for n, text in before.items():
        assert conf(lab, n) == text, n


def test_call_in_progress_survives_a_run_that_changes_another_carrier(lab):
    sys.path.insert(0, os.path.join(labtools.ROOT, "lab"))
    import call  # lab/call.py: a real SIPp call through Kamailio

    playbook(lab, carriers(lab))
    acc = lab["d16"]["accounts"]["long"]
    kam = lab["facts"]["sip_carrier"]["address"]
    running = call.start_call(lab["name"], lab["d16"]["accounts"]["sip"]["username"], hold=15.0)
    time.sleep(1.0)
    # Adding a chan_sip carrier reloads chan_sip, the driver that carries the call.
    out = playbook(lab, carriers(lab, lablong={"protocol": "sip", "registration": "%s:%s@%s:5060/%s" % (
        acc["username"], acc["password"], kam, acc["username"])}))
    assert out.returncode == 0, out.stdout[-2000:]
    assert "sip" in out.stdout and "added: lablong" in out.stdout
    result = running.wait(timeout=40)
    assert result.answered and result.ok, result.summary()
    # The caller hung up after its full hold: the reload in the middle did not drop the call.
    assert result.hangup_by == "caller" and result.duration_s >= 14.5, result.summary()
    assert out.seconds < result.duration_s
