"""Real inbound carrier calls: SIPp -> the lab's Kamailio -> the dialer that registered the account.

With the carriers registered (site.yml is run first, limited to the dialer, only when the dialer
does not already show the account `Registered`), a call to the account at the carrier must be
routed by Kamailio's lookup("location") to the dialer, answered (200 OK) by its `trunkinbound`
context, seen live in its `core show channels` while the call is up, logged by its dialplan
(`vicireg-lab inbound DID <account> on <channel>`), and hung up with BYE. lab/call.py does the
call (start_call / CallResult); these tests check its evidence independently where they can.

Controls, so that the positive tests cannot pass on faked routing:
  * an account nobody registered is NOT answered: Kamailio says 404 and no dialer sees a call;
  * a call for an account of dialer A, checked against dialer B, is NOT proven on B.

Fails (never skips) when the lab is not running.
"""
import os
import sys
import time
import warnings

import pytest

import labtools

sys.path.insert(0, os.path.join(labtools.ROOT, "lab"))
import call as labcall  # noqa: E402  (lab/call.py)

UNREGISTERED = "nosuchaccount"


@pytest.fixture(scope="module")
def lab():
    data = labtools.facts()  # AssertionError (a failure, not a skip) when the lab is down
    assert os.path.exists(labcall.SIPP), "SIPp is missing (%s); the lab installs sip-tester" % labcall.SIPP
    return data


def _wait_registered(dialer, account, timeout):
    deadline = time.time() + timeout
    state = (None, None)
    while time.time() < deadline:
        state = labcall.registration_state(dialer, account)
        if state[1] == "Registered":
            return state
        time.sleep(1)
    return state


def ensure_registered(dialer, account):
    """The dialer shows `account` Registered; runs site.yml (this dialer only) when it does not."""
    state = labcall.registration_state(dialer, account)
    if state[1] == "Registered":
        return "already registered (%s)" % state[0]
    proc = labtools.run_playbook("--limit", dialer["name"], timeout=900)
    # Asterisk 22 delays a PJSIP registration added by a reload by a few seconds (lab/README.md)
    state = _wait_registered(dialer, account, 30)
    assert state[1] == "Registered", (
        "%s does not show %s Registered even after site.yml (rc %d; state %s):\n%s"
        % (dialer["name"], account, proc.returncode, state, proc.stdout[-3000:] + proc.stderr[-2000:]))
    return "registered by site.yml (rc %d)" % proc.returncode


def live_channels(dialer, caller):
    """Channels of the dialer in trunkinbound whose caller id is this call's token."""
    out = labcall.asterisk_rx(dialer["root"], "core show channels concise", timeout=5)
    found = []
    for line in out.splitlines():
        cols = line.split("!")
        if len(cols) > 7 and cols[1] == "trunkinbound" and cols[7] == caller:
            found.append(cols)
    return found


CASES = [
    # (Asterisk major, account kind, channel technology the dialer must have used)
    pytest.param(16, "sip", "SIP/", id="a16-chan_sip"),
    pytest.param(22, "pjsip", "PJSIP/", id="a22-pjsip"),
]


@pytest.mark.parametrize("major,kind,tech", CASES)
def test_inbound_call_answered_by_the_registering_dialer(lab, major, kind, tech):
    dialer = labtools.dialer(lab, major)
    account = dialer["accounts"][kind]["username"]
    how = ensure_registered(dialer, account)

    call = labcall.start_call(dialer["name"], account, hold=1.5, timeout=10, facts=lab)
    # keep the call up while something else runs: here, look at the dialer's live channels
    seen = []
    deadline = time.time() + 15
    while call.proc.poll() is None and time.time() < deadline and not seen:
        seen = live_channels(dialer, call.result.caller)
        time.sleep(0.1)
    result = call.wait()
    print(result.summary(), "|", how)

    assert result.answered, result.summary()
    assert result.ok and result.exit_code == labcall.EXIT_OK, result.summary()
    # the 200 OK came from that dialer's Asterisk (its useragent names the host) ...
    assert "(%s)" % dialer["name"] in result.final_server, result.final_server
    # ... which had the channel up in trunkinbound while the call was held (seen by this test) ...
    assert seen, "%s never showed a trunkinbound channel for caller %s during the call" % (
        dialer["name"], result.caller)
    assert seen[0][0].startswith(tech) and seen[0][2] == account, seen
    # ... logged it in its dialplan, over the expected channel driver, and no other dialer did
    assert result.dialer_log and result.channels, result.summary()
    assert all(ch.startswith(tech) for ch in result.channels), result.channels
    assert seen[0][0] in result.channels, (seen[0][0], result.channels)
    assert not result.other_dialers, result.other_dialers
    # Kamailio relayed it to the contact this dialer registered
    assert any("relayed to sip:%s@%s:" % (account, dialer["address"]) in line
               for line in result.kamailio), result.kamailio
    # held for --hold (< the 2 s + beep of trunkinbound), then WE hung up with BYE
    assert result.hangup_by == "caller", result.summary()
    assert 1.3 <= result.duration_s <= 3.0, result.duration_s
    assert result.setup_ms is not None and result.setup_ms < 5000, result.setup_ms
    if result.forks > 1:
        warnings.warn("Kamailio forked the call for %s to %d contacts (stale bindings): %d channels on "
                      "%s: %s" % (account, result.forks, len(result.channels), dialer["name"],
                                  " ".join(result.channels)))


def test_unregistered_account_is_not_answered(lab):
    """Negative control: nothing registered `nosuchaccount`, so Kamailio must refuse the call."""
    for item in lab["accounts"]:
        assert item["username"] != UNREGISTERED
    dialer = labtools.dialer(lab, 16)
    result = labcall.place_call(dialer["name"], UNREGISTERED, hold=0, timeout=10, facts=lab)
    print(result.summary())
    result.discard()  # an expected failure: no need to keep SIPp's trace
    assert not result.answered, result.summary()
    assert not result.ok
    assert result.exit_code == labcall.EXIT_NOT_REGISTERED, result.summary()
    assert result.final_code in (404, 480), result.summary()
    assert "vicireg-lab-carrier" in result.final_server, result.final_server  # Kamailio, not a dialer
    assert not result.dialer_log and not result.other_dialers, (result.dialer_log, result.other_dialers)
    assert "not registered at Kamailio" in result.reason, result.reason


def test_call_is_not_proven_on_the_wrong_dialer(lab):
    """Control: a call to the a22 dialer's account, checked against the a16 dialer, must fail."""
    d22 = labtools.dialer(lab, 22)
    d16 = labtools.dialer(lab, 16)
    account = d22["accounts"]["pjsip"]["username"]
    ensure_registered(d22, account)
    result = labcall.place_call(d16["name"], account, hold=0, timeout=10, facts=lab)
    print(result.summary())
    result.discard()
    assert result.answered, result.summary()  # the call itself works ...
    assert not result.ok and result.exit_code == labcall.EXIT_NOT_PROVEN, result.summary()
    assert not result.dialer_log, result.dialer_log  # ... but a16 never saw it
    assert d22["name"] in result.other_dialers, result.other_dialers  # a22 did
