"""Rolling rollout: the canary dialer first; a failing canary leaves every other dialer untouched.

Proven on the wire: Kamailio logs every REGISTER with its source address, and the held dialer's
Asterisk shows no reload and its files are byte for byte the same."""
import collections
import os
import re
import subprocess

import pytest

import labtools
from labkit import registrar

CARRIER = "roll"


def flat(out):
    """The run's output with its line wrapping undone (the YAML callback folds long messages)."""
    return " ".join(out.stdout.split())


def fleet(facts, contact, bad_on=None):
    """One PJSIP carrier on every dialer (each with its own account); a wrong secret on bad_on only."""
    secret = "{{ lab_accounts.pjsip.password }}"
    if bad_on:
        secret = "{{ 'WrongSecret-Roll9' if inventory_hostname == '%s' else lab_accounts.pjsip.password }}" % bad_on
    return [{"name": CARRIER, "protocol": "pjsip", "timeout": 8,
             "registration": "{{ lab_accounts.pjsip.username }}:%s@%s:5060/%s" % (
                 secret, facts["sip_carrier"]["address"], contact)}]


def rows(out):
    return {r["host"]: r for r in out.report or [] if r["carrier"] == CARRIER}


def since_reload(d):
    text = subprocess.run(["chroot", d["root"], "asterisk", "-rx", "core show uptime seconds"], capture_output=True,
                          text=True, timeout=20).stdout
    return int(re.search(r"Last reload:\s*(\d+)", text).group(1))


def read(d, name):
    with open(os.path.join(d["root"], "etc", "asterisk", name)) as handle:
        return handle.read()


def sent(since, contact):
    """REGISTERs Kamailio received since a log line, counted per source address, for one contact user."""
    return collections.Counter(r["src"].rsplit(":", 1)[0] for r in registrar.registers(since, "received")
                               if "sip:%s@" % contact in (r.get("contact") or ""))


@pytest.fixture(scope="module")
def lab():
    facts = labtools.facts()
    canary, other = labtools.dialer(facts, 16), labtools.dialer(facts, 22)
    out = labtools.run_playbook(carriers=fleet(facts, "7101"))
    assert out.returncode == 0, out.stdout[-3000:]
    return {"facts": facts, "canary": canary, "other": other}


def test_a_failing_canary_leaves_every_other_dialer_untouched(lab):
    canary, other = lab["canary"], lab["other"]
    before = read(other, "vicireg-pjsip.conf")
    since = registrar.log_lines()
    out = labtools.run_playbook(carriers=fleet(lab["facts"], "7102", bad_on=canary["name"]))
    assert out.returncode != 0
    assert "to change, in this order: %s | %s" % (canary["name"], other["name"]) in flat(out)
    got = rows(out)
    assert got[canary["name"]]["verdict"] == "failed"
    assert got[other["name"]]["verdict"] == "not reached"
    assert canary["name"] in got[other["name"]]["cause"] and "nothing was changed" in got[other["name"]]["cause"]
    # The canary tried the new contact (and was rolled back); the other dialer sent nothing new,
    # wrote nothing, reloaded nothing.
    counts = sent(since, "7102")
    assert counts[canary["address"]] >= 1 and counts[other["address"]] == 0, counts
    assert read(other, "vicireg-pjsip.conf") == before and "contact_user=7101" in before
    assert since_reload(other) >= out.seconds - 1
    assert "contact_user=7101" in read(canary, "vicireg-pjsip.conf")  # rolled back
    # Every dialer's lock was given back.
    for d in (canary, other):
        with open(os.path.join(d["root"], "run", "lock", "vicireg-carriers.lock")) as handle:
            assert handle.read() == ""


def test_a_good_change_goes_to_the_canary_first_then_the_next_batch(lab):
    canary, other = lab["canary"], lab["other"]
    since = registrar.log_lines()
    out = labtools.run_playbook(carriers=fleet(lab["facts"], "7103"))
    assert out.returncode == 0, out.stdout[-3000:]
    assert all(r["verdict"] == "registered" for r in rows(out).values()) and len(rows(out)) == 2
    order = [r["src"].rsplit(":", 1)[0] for r in registrar.registers(since, "received")
             if "sip:7103@" in (r.get("contact") or "")]
    assert order and order[0] == canary["address"] and other["address"] in order
    assert order.index(other["address"]) > order.index(canary["address"])


def test_batch_sizes_are_variables_and_bad_ones_stop_the_run_before_any_change(lab):
    out = labtools.run_playbook("-e", "vicireg_carriers_canary=0", "-e", "vicireg_carriers_batch=100%",
                                carriers=fleet(lab["facts"], "7104"))
    assert out.returncode == 0, out.stdout[-3000:]
    assert "to change, in this order: %s, %s" % (lab["canary"]["name"], lab["other"]["name"]) in flat(out)
    before = read(lab["other"], "vicireg-pjsip.conf")
    out = labtools.run_playbook("-e", "vicireg_carriers_batch=0", carriers=fleet(lab["facts"], "7105"))
    assert out.returncode != 0 and "vicireg_carriers_batch must be at least 1" in flat(out)
    assert read(lab["other"], "vicireg-pjsip.conf") == before


def test_a_no_op_run_changes_nothing_and_sends_nothing(lab):
    labtools.run_playbook(carriers=fleet(lab["facts"], "7106"))
    out = labtools.run_playbook(carriers=fleet(lab["facts"], "7106"))
    assert out.returncode == 0 and "nothing to change" in flat(out)
    assert all(r["verdict"] == "registered" for r in rows(out).values())
    assert since_reload(lab["other"]) >= out.seconds - 1 and since_reload(lab["canary"]) >= out.seconds - 1
