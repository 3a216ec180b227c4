"""playbooks/migrate-to-pjsip.yml against the real lab: one carrier moves, one stays on chan_sip with its cause.

The Asterisk 16 dialer runs chan_sip on :5060 and PJSIP on its own transport port :5070. It starts
(site.yml) with two chan_sip carriers and one PJSIP carrier:

  * `migsip` registers the account d1sip at Kamailio by address. PJSIP registers it too: it moves,
    and a real inbound call (lab/call.py) must arrive on a PJSIP/migsip- channel.
  * `migdns` registers d1longusername at Kamailio by a DNS name, NAME (see STALE below), as a carrier
    that moved its service but left a stale NAPTR record behind:
        _sip._udp.NAME  SRV    lab.carrier:5060          (the registrar)
        NAME            NAPTR  SIP+D2U -> _sip._udp.old.NAME
        _sip._udp.old.NAME SRV lab.carrier:5099          (nothing listens there)
    chan_sip never reads NAPTR records: it follows the SRV record (or, with srvlookup=no, NAME's A
    record, also the registrar) and registers. PJSIP resolves as RFC 3263 says, NAPTR first, and sends
    its REGISTER where nothing answers. The failure is PJSIP's alone and a real one (stale NAPTR
    records are a known trap of chan_sip -> PJSIP moves): the playbook must leave migdns on chan_sip,
    registered and untouched, name it with the cause, and end red after trying every carrier.
  * `labpjsip` (d1pjsip) is on PJSIP already and must stay registered throughout.

The carriers come from an extra inventory source (`-i`): carriers given with -e would override the
list the playbook hands the role, so the playbook refuses them (checked here too).
The --check run comes first and must change nothing. At the end the dialer gets the lab's own
carriers back (site.yml with the inventory's list, as after `make demo`) and the DNS records go.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import pytest

import labtools

sys.path.insert(0, os.path.join(labtools.ROOT, "lab"))
import call as labcall  # noqa: E402  (lab/call.py)

PLAYBOOK = "playbooks/migrate-to-pjsip.yml"
LABCTL = os.path.join(labtools.ROOT, "lab", "labctl.py")
STALE = "stale-naptr.lab.carrier"
TRIAL = "vicireg-pjsip-migrate.conf"
RECORDS = [
    (STALE, "A", "127.0.0.10"),
    ("_sip._udp." + STALE, "SRV", "10", "0", "5060", "lab.carrier"),
    (STALE, "NAPTR", "10", "10", "s", "SIP+D2U", "", "_sip._udp.old." + STALE),
    ("_sip._udp.old." + STALE, "SRV", "10", "0", "5099", "lab.carrier"),
]


def labctl(*args, check=True):
    out = subprocess.run([sys.executable, LABCTL] + list(args), capture_output=True, text=True, timeout=60)
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def rx(lab, command):
    return subprocess.run(["chroot", lab["root"], "asterisk", "-rx", command], capture_output=True, text=True,
                          timeout=20).stdout


def conf_path(lab, name):
    return os.path.join(lab["root"], "etc", "asterisk", name)


def conf(lab, name):
    with open(conf_path(lab, name)) as handle:
        return handle.read()


def mtimes(lab):
    folder = os.path.join(lab["root"], "etc", "asterisk")
    return {n: os.stat(os.path.join(folder, n)).st_mtime for n in sorted(os.listdir(folder))
            if n.startswith("vicireg-") or n in ("sip.conf", "pjsip.conf")}


def contacts(user):
    return json.loads(labctl("registrar", "contacts", user).stdout or "[]")


def wait_for(what, probe, timeout=20.0):
    deadline = time.time() + timeout
    value = probe()
    while not value and time.time() < deadline:
        time.sleep(0.3)
        value = probe()
    assert value, "%s: not within %ss" % (what, timeout)
    return value


@pytest.fixture(scope="module")
def scene(lab):
    acc = lab["d16"]["accounts"]
    kam = lab["facts"]["sip_carrier"]["address"]
    carriers = [
        {"name": "migsip", "protocol": "sip", "timeout": 8, "registration": "%s:%s@%s:5060/%s" % (
            acc["sip"]["username"], acc["sip"]["password"], kam, acc["sip"]["username"])},
        # user@domain:secret@host: the To-domain is the registrar's own (lab.carrier), the REGISTER goes
        # to the host name, no port written (so SRV and, for PJSIP, NAPTR records count).
        {"name": "migdns", "protocol": "sip", "timeout": 8, "registration": "%s@lab.carrier:%s@%s/%s" % (
            acc["long"]["username"], acc["long"]["password"], STALE, acc["long"]["username"])},
        {"name": "labpjsip", "protocol": "pjsip", "timeout": 8, "registration": "%s:%s@%s:5060/%s" % (
            acc["pjsip"]["username"], acc["pjsip"]["password"], kam, acc["pjsip"]["username"])},
    ]
    for record in RECORDS:
        labctl("dns", "del", *record, check=False)
        labctl("dns", "add", *record)
    # The dialer's AMI for the playbook's inbound watch: Kamailio forks a call to every binding of the
    # account, chan_sip's and PJSIP's, and cancels PJSIP's branch when chan_sip answers first: only the
    # AMI's Newchannel event is sure to show that milliseconds-long PJSIP channel.
    ami = {"host": lab["d16"]["address"], "port": lab["d16"]["ports"]["ami"],
           "username": lab["facts"]["ami"]["username"], "secret": lab["facts"]["ami"]["secret"]}
    fd, inventory = tempfile.mkstemp(prefix="vicireg-test-inventory-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump({"all": {"hosts": {lab["name"]: {"carriers": carriers, "vicireg_migrate_ami": ami}}}}, handle)
    secrets = [a["password"] for a in acc.values()] + [ami["secret"]]
    try:
        yield {"inventory": ["-i", "inventories/lab", "-i", inventory], "carriers": carriers, "secrets": secrets}
    finally:
        os.remove(inventory)
        # The lab's own carriers back on the dialer. d1sip's PJSIP binding goes first: chan_sip's
        # registration (labsip) then stands alone at the registrar, as other tests expect.
        labctl("registrar", "flush", acc["sip"]["username"], check=False)
        restored = labtools.run_playbook("--limit", lab["name"])
        for record in RECORDS:
            labctl("dns", "del", *record, check=False)
        assert restored.returncode == 0, restored.stdout[-3000:]


def migrate(lab, scene, *args, extra=None):
    extra_args = ["-e", json.dumps(extra)] if extra else []
    return labtools.run_playbook(*(scene["inventory"] + ["--limit", lab["name"]] + extra_args + list(args)),
                                 playbook=PLAYBOOK, timeout=600)


def flat(out):
    """The run's output with the callback's line folding undone (words joined by single spaces)."""
    return " ".join(out.stdout.split())


def assert_no_secret(out, scene):
    for secret in scene["secrets"]:
        assert secret not in out.stdout and secret not in out.stderr, "a secret was printed"


def test_refusals_name_the_carrier_and_change_nothing(lab, scene):
    before = mtimes(lab)
    out = migrate(lab, scene, extra={"vicireg_migrate_carriers": ["labpjsip", "nosuch", "migsip"]})
    assert out.returncode != 0
    assert "refused before any carrier moved on any dialer" in out.stdout, out.stdout[-3000:]
    assert "carrier 'labpjsip' has protocol pjsip in the inventory" in out.stdout
    assert "carrier 'nosuch' is not among this dialer's carriers" in out.stdout
    # carriers given as an extra var would override what the playbook hands the role: refused.
    out2 = labtools.run_playbook("--limit", lab["name"], "-e", json.dumps({"carriers": scene["carriers"]}),
                                 playbook=PLAYBOOK)
    assert out2.returncode != 0 and "'carriers' is given as an extra var" in out2.stdout, out2.stdout[-3000:]
    assert mtimes(lab) == before
    assert_no_secret(out, scene)
    assert_no_secret(out2, scene)


def test_a_test_call_that_does_not_arrive_keeps_the_carrier_on_chan_sip(lab, scene):
    """Registered on PJSIP is not enough: the test call (here to an account nobody registered, so the
    carrier answers 404 and nothing reaches the dialer) must arrive on PJSIP/migsip-."""
    acc = lab["d16"]["accounts"]
    start = labtools.run_playbook(*(scene["inventory"] + ["--limit", lab["name"]]))
    assert start.returncode == 0, start.stdout[-3000:]
    sip_register = conf(lab, "vicireg-sip-register.conf")
    call = "%s %s --dialer {{ inventory_hostname }} --account nosuchaccount --timeout 3" % (
        sys.executable, os.path.join(labtools.ROOT, "lab", "call.py"))
    out = migrate(lab, scene, extra={"vicireg_migrate_carriers": ["migsip"], "vicireg_migrate_test_call": call,
                                     "vicireg_migrate_call_timeout": 4})
    text = flat(out)
    assert out.returncode != 0, out.stdout[-3000:]
    assert re.search(r"migsip stays on chan_sip: registered through PJSIP, but the test call \(exit status 3: .*\) "
                     r"showed no PJSIP/migsip- channel on this dialer within 4 s \(AMI events watched\)", text), \
        out.stdout[-3000:]
    assert "inventory change to make: none" in text
    # chan_sip untouched, the trial gone, and its PJSIP contact too (unregistered before the reload).
    assert conf(lab, "vicireg-sip-register.conf") == sip_register
    assert re.search(r"\bd1sip\s+\d+\s+Registered", rx(lab, "sip show registry"))
    assert not os.path.exists(conf_path(lab, TRIAL))
    assert "migsip" not in rx(lab, "pjsip show registrations")
    assert not [c for c in contacts(acc["sip"]["username"]) if ":5070" in c["contact"]]
    assert_no_secret(out, scene)


def test_one_carrier_moves_the_other_stays_on_chan_sip_with_its_cause(lab, scene):
    acc = lab["d16"]["accounts"]
    start = labtools.run_playbook(*(scene["inventory"] + ["--limit", lab["name"]]))
    assert start.returncode == 0, start.stdout[-3000:]
    registry = rx(lab, "sip show registry")
    assert re.search(r"\bd1sip\s+\d+\s+Registered", registry), registry
    assert re.search(r"\bd1longuserna\s+\d+\s+Registered", registry), registry

    # The inbound test call the playbook places for each carrier PJSIP registers (a command on the controller).
    call = "%s %s --dialer {{ inventory_hostname }} --account {{ vicireg_migrate_user }} --hold 1 --timeout 10" % (
        sys.executable, os.path.join(labtools.ROOT, "lab", "call.py"))

    # --check: the plan, nothing written or reloaded.
    before = mtimes(lab)
    regtime = re.search(r"\bd1sip .*Registered\s+(.+)$", registry, re.MULTILINE).group(1)
    time.sleep(1.1)
    t0 = time.time()
    check = migrate(lab, scene, "--check", "--diff", extra={"vicireg_migrate_test_call": call})
    check_seconds = time.time() - t0
    text = flat(check)
    assert check.returncode == 0, check.stdout[-3000:]
    assert "to move to PJSIP, one carrier at a time: migsip, migdns" in text, check.stdout[-3000:]
    assert "then a test call must arrive on PJSIP from the carrier (watched through the AMI)" in text
    assert "check mode, nothing was changed: would move to PJSIP, one at a time: migsip, migdns" in text
    assert "inventory change to make once they moved: carriers: set protocol: pjsip on migsip, migdns" in text
    assert "[migsip-reg]" in text and "[migdns-reg]" in text and "password=****" in text
    assert "check mode: would be added" in text  # the role's own check-mode table
    assert mtimes(lab) == before
    assert not os.path.exists(conf_path(lab, TRIAL))
    assert re.search(r"\bd1sip .*Registered\s+(.+)$", rx(lab, "sip show registry"), re.MULTILINE).group(1) \
        == regtime  # chan_sip was not reloaded
    assert_no_secret(check, scene)

    # The move, with an inbound test call for each carrier that PJSIP registers (-vvv: no secret even so).
    t0 = time.time()
    out = migrate(lab, scene, "-vvv", extra={"vicireg_migrate_test_call": call})
    seconds = time.time() - t0
    print("check run %.1f s, migration run %.1f s" % (check_seconds, seconds))
    text = flat(out)
    print(text[text.find("PLAY [Say what"):][:1600])
    assert out.returncode != 0, text[-3000:]
    assert "moved to PJSIP: migsip (registered through PJSIP in" in text, text[-4000:]
    assert re.search(r"the test call arrived on PJSIP/migsip-[0-9a-f]{8}", text), text[-4000:]
    assert re.search(r"migdns stays on chan_sip: PJSIP did not register it \(state [^)]+\): .+; chan_sip keeps "
                     r"it \(state Registered\)", text), text[-4000:]
    # The cause follows PJSIP's own way to the stale port: the NAPTR record, then its SRV target.
    assert "no SRV target of %s answers (tried lab.carrier:5099 via the NAPTR record of %s" % (STALE, STALE) in text
    assert "inventory change to make: carriers: set protocol: pjsip on migsip" in text
    # The failure itself names the dialer and the carrier with its cause.
    assert "Task failed: Action failed: %s: migdns stays on chan_sip: PJSIP did not register it" % lab["name"] in text
    assert_no_secret(out, scene)

    # The files: migsip in vicireg-pjsip.conf only, migdns still chan_sip's, the trial gone.
    assert "; vicireg:begin migsip" not in conf(lab, "vicireg-sip-register.conf")
    assert "; vicireg:begin migsip" not in conf(lab, "vicireg-sip-peers.conf")
    assert "; vicireg:begin migdns" in conf(lab, "vicireg-sip-register.conf")
    pjsip = conf(lab, "vicireg-pjsip.conf")
    assert "; vicireg:begin migsip" in pjsip and "; vicireg:begin labpjsip" in pjsip
    assert "migdns" not in pjsip
    assert not os.path.exists(conf_path(lab, TRIAL)) or not conf(lab, TRIAL).strip()
    assert "#tryinclude %s" % TRIAL in conf(lab, "pjsip.conf")

    # The dialer: migdns registered on chan_sip (never reloaded away), migsip on PJSIP only.
    registry = rx(lab, "sip show registry")
    assert re.search(r"\bd1longuserna\s+\d+\s+Registered", registry), registry
    assert not re.search(r"\bd1sip\b", registry), registry
    regs = rx(lab, "pjsip show registrations")
    assert re.search(r"migsip-reg/\S+\s+\S+\s+Registered", regs), regs
    assert re.search(r"labpjsip-reg/\S+\s+\S+\s+Registered", regs), regs
    assert "migdns" not in regs

    # The registrar: chan_sip never un-REGISTERs, so its old binding is flushed; PJSIP registers again
    # at once when asked, and chan_sip (no longer configured for d1sip) does not.
    user = acc["sip"]["username"]
    labctl("registrar", "flush", user)
    rx(lab, "pjsip send register migsip-reg")
    found = wait_for("a new binding of %s" % user, lambda: contacts(user))
    time.sleep(2.0)
    found = contacts(user)
    assert found and all(re.search(r"@127\.0\.0\.21:5070\b", c["contact"]) for c in found), found

    # A real inbound call to migsip's account arrives through PJSIP as migsip's endpoint.
    result = labcall.place_call(lab["name"], user, hold=1.0, timeout=10)
    assert result.ok, result.summary()
    assert result.channels and all(ch.startswith("PJSIP/migsip-") for ch in result.channels), result.channels
