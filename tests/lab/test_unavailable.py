"""Causes that are not the carrier's: Asterisk not running, a driver not loaded. Nothing is changed."""
import json
import os
import subprocess
import sys
import time

import labtools



def rx(d, command):
    return subprocess.run(["chroot", d["root"], "asterisk", "-rx", command], capture_output=True, text=True,
                          timeout=20)


def site(d):
    return labtools.run_playbook("--limit", d["name"])


def lab_up():
    subprocess.run([sys.executable, os.path.join(labtools.ROOT, "lab", "labctl.py"), "up"], capture_output=True,
                   timeout=300, check=True)


def test_chan_sip_not_loaded_is_named_and_nothing_changes():
    d = labtools.dialer(labtools.facts(), 16)
    assert site(d).returncode == 0
    conf = os.path.join(d["root"], "etc", "asterisk", "vicireg-sip-register.conf")
    before = os.stat(conf).st_mtime
    rx(d, "module unload chan_sip.so")
    try:
        assert "0 modules loaded" in rx(d, "module show like chan_sip.so").stdout
        out = site(d)
        assert out.returncode != 0
        assert "needs the sip driver, which is not loaded on this Asterisk" in out.stdout
        assert os.stat(conf).st_mtime == before
    finally:
        rx(d, "module load chan_sip.so")


def test_asterisk_not_running_is_the_cause_and_nothing_changes():
    d = labtools.dialer(labtools.facts(), 22)
    assert site(d).returncode == 0
    conf = os.path.join(d["root"], "etc", "asterisk", "vicireg-pjsip.conf")
    before = os.stat(conf).st_mtime
    rx(d, "core stop now")
    deadline = time.time() + 20
    while time.time() < deadline and rx(d, "core show version").returncode == 0:
        time.sleep(0.2)
    try:
        out = site(d)
        assert out.returncode != 0
        assert "%s: Asterisk is not running" % d["name"] in out.stdout
        with open(os.path.join(labtools.ROOT, "reports", "registrations.json")) as handle:
            rows = [r for r in json.load(handle) if r["host"] == d["name"]]
        assert rows and all(r["state"] == "unavailable" and r["verdict"] == "failed" for r in rows)
        assert all("Asterisk is not running" in r["cause"] for r in rows)
        assert os.stat(conf).st_mtime == before
    finally:
        lab_up()
