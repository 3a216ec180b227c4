"""No stale contacts: a changed or removed registration leaves exactly the contacts it should at the
carrier, counted at the lab's Kamailio (usrloc), and an inbound call rings exactly one channel.

chan_sip never un-REGISTERs on reload; the toolkit asks the registrar to drop the old contact first
(module_utils/vicireg_release.py). PJSIP un-REGISTERs a re-created registration itself.
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


def contacts(user, dialer):
    """The account's contacts at the carrier that point at this dialer."""
    return sorted(c["contact"] for c in registrar.contacts(user) if "@%s:" % dialer["address"] in c["contact"])


def settled(user, dialer, want, timeout=4.0):
    """The contacts once they are what the test wants (PJSIP un-REGISTERs asynchronously), or as they end."""
    deadline = time.time() + timeout
    while True:
        now = contacts(user, dialer)
        if want(now) or time.time() > deadline:
            return now
        time.sleep(0.2)


def one_ring(lab_facts, dialer, account):
    result = labcall.place_call(dialer["name"], account, hold=0, timeout=10, facts=lab_facts)
    assert result.answered, result.summary()
    assert result.forks <= 1 and len(result.channels) == 1, result.summary()


@pytest.mark.parametrize("major,kind,protocol", [(16, "sip", "sip"), (16, "pjsip", "pjsip"), (22, "pjsip", "pjsip")])
def test_a_changed_then_removed_registration_leaves_no_old_contact(lab, major, kind, protocol):
    d = labtools.dialer(lab["facts"], major)
    acc = d["accounts"][kind]
    user, secret = acc["username"], acc["password"]
    registrar.flush(user)
    first = "register => %s:%s@lab.carrier/%s" % (user, secret, user)
    try:
        out = run(d, [{"name": "stale", "protocol": protocol, "registration": first}])
        assert out.returncode == 0, out.stdout[-3000:]
        assert contacts(user, d) and all("sip:%s@" % user in c for c in contacts(user, d)), contacts(user, d)
        # A new contact user (extension) and expiry: the old contact must go, the new one stay alone.
        out = run(d, [{"name": "stale", "protocol": protocol,
                       "registration": "register => %s:%s@lab.carrier/7001~300" % (user, secret)}])
        assert out.returncode == 0, out.stdout[-3000:]
        now = settled(user, d, lambda c: len(c) == 1)
        assert len(now) == 1 and now[0].startswith("sip:7001@"), now
        # Back to the account as contact user, another expiry: again one contact, one channel rings.
        out = run(d, [{"name": "stale", "protocol": protocol,
                       "registration": "register => %s:%s@lab.carrier/%s~240" % (user, secret, user)}])
        assert out.returncode == 0, out.stdout[-3000:]
        now = settled(user, d, lambda c: len(c) == 1)
        assert len(now) == 1 and now[0].startswith("sip:%s@" % user), now
        one_ring(lab["facts"], d, user)
        # Removed: nothing of this dialer stays at the carrier.
        out = run(d, [])
        assert out.returncode == 0, out.stdout[-3000:]
        assert settled(user, d, lambda c: not c) == []
    finally:
        registrar.flush(user)
