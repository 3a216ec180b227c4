"""VICIdial's two PJSIP styles on both Asterisk versions: plain sections and the config wizard.

A carrier written as one pjsip_wizard.conf section registers like the plain sections (same REGISTER at
the carrier), answers an inbound call, and switching style leaves one contact at the carrier.
"""
import os
import sys
import time

import pytest

import labtools
from labkit import registrar

sys.path.insert(0, os.path.join(labtools.ROOT, "lab"))
import call as labcall  # noqa: E402  (lab/call.py)


run = labtools.run_on


def rx(dialer, command):
    import subprocess
    return subprocess.run(["chroot", dialer["root"], "asterisk", "-rx", command], capture_output=True, text=True,
                          timeout=20).stdout


def mine(user, dialer, timeout=4.0):
    deadline = time.time() + timeout
    while True:
        now = [c["contact"] for c in registrar.contacts(user) if "@%s:" % dialer["address"] in c["contact"]]
        if len(now) <= 1 or time.time() > deadline:
            return now
        time.sleep(0.2)


def ours(since, user):
    """This test's authorised REGISTERs (not un-REGISTERs) of the account, to lab.carrier."""
    return [r for r in registrar.registers(since, stage="received") if r.get("auth_user") == user
            and r["to"] == "sip:%s@lab.carrier" % user and r["expires_hdr"] != "0"]


@pytest.mark.parametrize("major", [16, 22])
def test_wizard_and_sections_register_alike_and_switch_cleanly(lab, major):
    d = labtools.dialer(lab["facts"], major)
    acc = d["accounts"]["pjsip"]
    user = acc["username"]
    line = "register => %s:%s@lab.carrier/%s" % (user, acc["password"], user)
    registrar.flush(user)
    try:
        since = registrar.log_lines()
        out = run(d, [{"name": "styled", "protocol": "pjsip", "pjsip_style": "wizard", "registration": line}])
        assert out.returncode == 0, out.stdout[-3000:]
        assert out.rows["styled"]["verdict"] == "registered"
        assert "styled-reg-0/sip:lab.carrier" in rx(d, "pjsip show registrations")
        with open(os.path.join(d["root"], "etc/asterisk/pjsip_wizard.conf")) as handle:
            assert "#tryinclude vicireg-pjsip-wizard.conf" in handle.read()
        wizard = ours(since, user)
        assert mine(user, d) and len(mine(user, d)) == 1
        call = labcall.place_call(d["name"], user, hold=0, timeout=10, facts=lab["facts"])
        assert call.answered and len(call.channels) == 1, call.summary()

        since = registrar.log_lines()
        out = run(d, [{"name": "styled", "protocol": "pjsip", "registration": line}])
        assert out.returncode == 0, out.stdout[-3000:]
        shown = rx(d, "pjsip show registrations")
        assert "styled-reg/sip:lab.carrier" in shown and "styled-reg-0" not in shown
        sections = ours(since, user)
        # The same REGISTER from either style (the Contact's line parameter is random per registration).
        keys = ("ru", "to", "from", "expires_hdr", "dst", "proto")
        assert {tuple(r[k] for k in keys) for r in wizard} == {tuple(r[k] for k in keys) for r in sections}
        assert len(mine(user, d)) == 1, mine(user, d)
        call = labcall.place_call(d["name"], user, hold=0, timeout=10, facts=lab["facts"])
        assert call.answered and len(call.channels) == 1, call.summary()
    finally:
        run(d, [])
        registrar.flush(user)
