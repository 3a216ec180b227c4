"""chan_sip and the toolkit's PJSIP form of the same registration string, compared on the wire.

One throw-away Asterisk 16 (an overlay of the lab's cached root, on 127.0.0.12, the lab's DNS server
in its resolv.conf) runs both stacks: chan_sip on :5060 with the canonical `register =>` lines the role
writes, PJSIP on :5070 with the sections the role renders for the same strings.  The lab's Kamailio
logs every REGISTER it receives; for each grammar form the authorised REGISTER of each stack is
compared field by field: Request-URI, To, From, Contact user, Expires, auth user, where it was sent
(address, port, transport).  Accounts of dialer indices 11-20 are used: no running dialer has them.
IPv6 hosts go to the registrar's [::1]:5064 from a second such Asterisk bound to [::1] only.

Seen on the wire while building this (Asterisk 16.28): chan_sip never sends the domain port
(`user@domain:dport:...`), needs the `peer?` peer to exist, and follows an SRV record's port only
with dnsmgr enabled (without it: the SRV target's address on port 5060). The chan_sip side here runs
with dnsmgr on, so an SRV-only carrier on a non-default port is reached by both stacks.
"""
import os
import re
import sys
import time

import pytest

import labtools

sys.path.insert(0, os.path.join(labtools.ROOT, "module_utils"))
import vicireg_carriers as carriers  # noqa: E402
import vicireg_render as render  # noqa: E402

import labctl  # noqa: E402  (lab/ is on sys.path through labtools)
from labkit import registrar  # noqa: E402

ADDRESS = labtools.ORACLE_ADDRESS
# (label, account index, account kind, string with {u} user, {p} password, {a} auth user)
FORMS = [
    ("name-no-port", 11, "sip", "{u}:{p}@lab.carrier"),
    ("address-and-port", 11, "pjsip", "{u}:{p}@127.0.0.10:5060"),
    ("tcp-transport", 11, "long", "tcp://{u}:{p}@lab.carrier"),
    ("TCP-upper-case", 15, "sip", "TCP://{u}:{p}@127.0.0.10"),
    ("user-at-domain", 12, "pjsip", "{u}@lab.carrier:{p}@127.0.0.10"),
    ("domain-port", 12, "long", "{u}@lab.carrier:5062:{p}:@127.0.0.10"),
    ("auth-user", 11, "authuser", "{u}:{p}:{a}@lab.carrier"),
    ("empty-auth-user", 13, "sip", "{u}:{p}:@lab.carrier"),
    ("extension-and-expiry", 13, "pjsip", "{u}:{p}@lab.carrier/7001~300"),
    # chan_sip needs the peer to exist (an unknown one: no REGISTER at all); the role writes the
    # carrier's own peer section, here the test's sip.conf does.
    ("peer-prefix", 13, "long", "wirepeer?{u}:{p}@lab.carrier"),
    ("srv-only-name", 17, "sip", "{u}:{p}@srv.lab.carrier"),
    ("two-address-name", 14, "pjsip", "{u}:{p}@multi.lab.carrier"),
    ("long-host-name", 14, "long", "{u}:{p}@registrar-with-a-long-name.lab.carrier"),
    ("explicit-default-port", 12, "authuser", "{u}:{p}:{a}@lab.carrier:5060"),
    ("address-and-other-port", 18, "pjsip", "{u}:{p}@127.0.0.14:5062"),
    ("name-and-other-port", 16, "pjsip", "{u}:{p}@srv-target.lab.carrier:5062"),
    ("ipv6-host", 15, "pjsip", "{u}:{p}@[::1]:5064"),
    ("ipv6-host-user-at-domain", 15, "long", "{u}@lab.carrier:{p}@[::1]:5064/7002"),
]
IPV6 = ("ipv6-host", "ipv6-host-user-at-domain")
COMPARED = ("ru", "to", "from", "contact_user", "expires", "auth_user", "dst", "proto")
# A name with two A records: each stack may pick either address (same port, same transport).
EITHER = {"two-address-name": {"127.0.0.10", "127.0.0.13"}}


def _accounts():
    cfg = labctl.load_config()
    return {(a["index"], a["kind"]): a for a in labctl.all_accounts(cfg) if a["carrier"] == "sip"}


def _strings():
    accounts = _accounts()
    out = []
    for label, index, kind, form in FORMS:
        acc = accounts[(index, kind)]
        out.append((label, acc["username"], form.format(u=acc["username"], p=acc["password"],
                                                        a=acc.get("authuser") or "")))
    return out


def _wire(rec):
    contact = re.match(r"<?sips?:([^@>;]+)@", rec.get("contact") or "")
    expires = rec.get("expires_hdr")
    m = re.search(r";expires=(\d+)", rec.get("contact") or "")
    return {"ru": rec["ru"], "to": rec["to"], "from": rec["from"],
            "contact_user": contact.group(1) if contact else None,
            "expires": int(m.group(1) if m else expires) if (m or expires) else None,
            "auth_user": rec.get("auth_user"), "dst": rec["dst"], "proto": rec["proto"].lower()}


def _oracle_files(strings, sip_bind, pjsip_bind, tcp):
    """An Asterisk 16 config with both stacks: chan_sip registering the role's canonical lines, PJSIP the
    sections the role renders for the same strings."""
    carrier_list = [{"name": "w%02d" % i, "protocol": "pjsip", "registration": s, "qualify": False}
                    for i, (_, _, s) in enumerate(strings)]
    pjsip_text = render.render_files(carriers.carrier_plan(carrier_list), drivers=("pjsip",))["files"][
        "vicireg-pjsip.conf"]
    sip_lines = "".join("%s\n" % item["line"] for item in carriers.carrier_plan(
        [dict(c, protocol="sip") for c in carrier_list]))
    transports = "".join("[transport-%s]\ntype=transport\nprotocol=%s\nbind=%s\n\n" % (p, p, pjsip_bind)
                         for p in (("udp", "tcp") if tcp else ("udp",)))
    return {
        "modules.conf": "[modules]\nautoload=no\n" + "".join("load => %s.so\n" % m for m in (
            "res_crypto", "res_timing_timerfd", "res_sorcery_config", "res_sorcery_memory", "res_sorcery_astdb",
            "res_pjproject", "res_rtp_asterisk", "chan_sip", "res_pjsip", "res_pjsip_session", "chan_pjsip",
            "res_pjsip_outbound_authenticator_digest", "res_pjsip_outbound_registration",
            "res_pjsip_endpoint_identifier_ip", "pbx_config", "codec_ulaw")),
        "logger.conf": "[general]\n[logfiles]\nmessages => notice,warning,error\n",
        "sip.conf": "[general]\nudpbindaddr=%s\n%s\nsrvlookup=yes\nuseragent=wire-chan_sip\n%s\n"
                    "[wirepeer]\ntype=peer\nhost=lab.carrier\n"
                    % (sip_bind, "tcpenable=yes\ntcpbindaddr=%s" % sip_bind if tcp else "tcpenable=no", sip_lines),
        # chan_sip follows an SRV record's port only through dnsmgr; without it, it sends to the
        # target's address on the string's port (5060): seen on the wire, see the module docstring.
        "dnsmgr.conf": "[general]\nenable=yes\nrefreshinterval=300\n",
        "pjsip.conf": "[global]\ntype=global\nuser_agent=wire-pjsip\n\n%s%s\n" % (transports, pjsip_text),
        "extensions.conf": "[default]\n[trunkinbound]\n",
        "rtp.conf": "[general]\nrtpstart=21100\nrtpend=21198\n",
    }


def _run_oracle(name, strings, source, files):
    """Start the oracle, collect each stack's first authorised REGISTER per account at the registrar."""
    since = registrar.log_lines()
    oracle = labtools.OracleRoot("a16", name).__enter__()
    try:
        with open(os.path.join(oracle.root, "etc/resolv.conf"), "w") as handle:
            handle.write("nameserver %s\noptions timeout:1 attempts:2\n" % labtools.facts()["dns"]["address"])
        with open(os.path.join(oracle.root, "etc/hosts"), "w") as handle:
            handle.write("127.0.0.1 localhost\n")
        instance = labtools.RootAsterisk(oracle.root, name, files).start()
        users = {u for _, u, _ in strings}
        seen = {}
        deadline = time.time() + 40
        try:
            while time.time() < deadline:
                for rec in registrar.registers(since, stage="received"):
                    if rec["src"].startswith(source + ":") and rec.get("auth_user"):
                        to_user = re.match(r"sips?:([^@]+)@", rec["to"]).group(1)
                        stack = "sip" if rec.get("user_agent") == "wire-chan_sip" else "pjsip"
                        seen.setdefault((to_user, stack), rec)
                if all((u, s) in seen for u in users for s in ("sip", "pjsip")):
                    break
                time.sleep(0.5)
            log = instance.log()
        finally:
            instance.stop()
    finally:
        oracle.__exit__()
    return seen, log


@pytest.fixture(scope="module")
def wire():
    labtools.facts()  # the lab (its DNS, Kamailio and cached Asterisk 16 root) must be up
    strings = _strings()
    v6 = [s for s in strings if s[0] in IPV6]
    v4 = [s for s in strings if s[0] not in IPV6]
    seen, log = _run_oracle("wire", v4, ADDRESS, _oracle_files(v4, ADDRESS + ":5060", ADDRESS + ":5070", True))
    # IPv6: the lab's registrar also listens on [::1]:5064; this oracle binds [::1] only.
    seen6, log6 = _run_oracle("wire6", v6, "::1", _oracle_files(v6, "[::1]:5066", "[::1]:5068", False))
    seen.update(seen6)
    return {"strings": strings, "seen": seen, "log": log + log6}


@pytest.mark.parametrize("label", [f[0] for f in FORMS])
def test_pjsip_sends_the_register_chan_sip_sends(wire, label):
    (user, value), = [(u, s) for lbl, u, s in wire["strings"] if lbl == label]
    chan_sip = wire["seen"].get((user, "sip"))
    pjsip = wire["seen"].get((user, "pjsip"))
    assert chan_sip is not None, "chan_sip sent no authorised REGISTER for %s\n%s" % (label, wire["log"][-3000:])
    assert pjsip is not None, "PJSIP sent no authorised REGISTER for %s\n%s" % (label, wire["log"][-3000:])
    a, b = _wire(chan_sip), _wire(pjsip)
    if label in EITHER:
        for w in (a, b):
            address, port = w["dst"].rsplit(":", 1)
            assert address in EITHER[label], w["dst"]
            w["dst"] = "either:" + port
    different = {k: (a[k], b[k]) for k in COMPARED if a[k] != b[k]}
    assert not different, "%s: chan_sip vs PJSIP differ in %s" % (label, different)
