"""Carriers by DNS name through the lab's DNS server: SRV-only, plain names, match by name, DNS causes.

site.yml runs against each dialer (Asterisk 16: chan_sip and PJSIP; Asterisk 22: PJSIP only) with
carriers named as real carriers are; the lab's Kamailio logs where each REGISTER arrived.
"""
import subprocess

import pytest

import labtools
from labkit import registrar


def reg(acc, host, kind):
    return "register => %s:%s@%s" % (acc[kind]["username"], acc[kind]["password"], host)


@pytest.mark.parametrize("major", [16, 22])
def test_an_srv_only_carrier_registers_on_every_stack(lab, major):
    """srv.lab.carrier has no address record: only _sip._udp SRV -> registrar.lab.carrier:5062."""
    d = labtools.dialer(lab["facts"], major)
    acc = d["accounts"]
    carrier_list = [{"name": "srvpj", "protocol": "pjsip", "registration": reg(acc, "srv.lab.carrier", "pjsip"),
                     "timeout": 15}]
    if major == 16:
        carrier_list.append({"name": "srvsip", "protocol": "sip", "registration": reg(acc, "srv.lab.carrier", "sip"),
                             "timeout": 15})
    since = registrar.log_lines()
    try:
        out = labtools.run_on(d, carrier_list)
        assert out.returncode == 0, out.stdout[-3000:]
        assert {k: v["verdict"] for k, v in out.rows.items()} == {c["name"]: "registered" for c in carrier_list}
        # Both stacks followed the SRV record to its target and port (PJSIP by RFC 3263, chan_sip through
        # dnsmgr): nothing answers 5060 on the target's address.
        for kind in ("pjsip", "sip") if major == 16 else ("pjsip",):
            got = [r for r in registrar.registers(since, stage="received")
                   if r["src"].startswith(d["address"] + ":") and r["ru"] == "sip:srv.lab.carrier"
                   and r["to"] == "sip:%s@srv.lab.carrier" % acc[kind]["username"]]
            assert got and all(r["dst"] == "127.0.0.14:5062" for r in got), (kind, got)
    finally:
        labtools.run_on(d, [])


def test_a_name_that_does_not_resolve_is_named_as_the_cause(lab):
    d = labtools.dialer(lab["facts"], 22)
    acc = d["accounts"]
    out = labtools.run_on(d, [{"name": "nodns", "protocol": "pjsip", "timeout": 6,
                        "registration": reg(acc, "nowhere.lab.carrier", "pjsip")}])
    try:
        assert out.returncode != 0
        row = out.rows["nodns"]
        assert row["verdict"] == "failed"
        assert "nowhere.lab.carrier does not resolve (no SRV record _sip._udp.nowhere.lab.carrier" in row["cause"]
        assert "nowhere.lab.carrier does not resolve" in out.stdout
    finally:
        labtools.run_on(d, [])


def test_srv_targets_that_do_not_answer_are_named_as_the_cause(lab):
    d = labtools.dialer(lab["facts"], 22)
    acc = d["accounts"]
    labctl = ["python3", labtools.ROOT + "/lab/labctl.py", "dns"]
    subprocess.run(labctl + ["add", "_sip._udp.dead.lab.carrier", "SRV", "10", "0", "5099", "registrar.lab.carrier"],
                   check=True, capture_output=True)
    try:
        out = labtools.run_on(d, [{"name": "deadsrv", "protocol": "pjsip", "timeout": 6,
                            "registration": reg(acc, "dead.lab.carrier", "pjsip")}])
        assert out.returncode != 0
        cause = out.rows["deadsrv"]["cause"]
        assert "no SRV target of dead.lab.carrier answers (tried registrar.lab.carrier:5099" in cause, cause
    finally:
        subprocess.run(labctl + ["del", "_sip._udp.dead.lab.carrier"], check=True, capture_output=True)
        labtools.run_on(d, [])


def test_ip_authentication_by_name_on_pjsip(lab):
    """An IP-auth carrier given by name, with an extra source given by name in match."""
    d = labtools.dialer(lab["facts"], 22)
    out = labtools.run_on(d, [{"name": "byname", "protocol": "pjsip", "host": "lab.carrier",
                        "match": ["multi.lab.carrier"], "timeout": 10}])
    try:
        assert out.returncode == 0, out.stdout[-3000:]
        assert out.rows["byname"]["verdict"] == "reachable"
        shown = subprocess.run(["chroot", d["root"], "asterisk", "-rx", "pjsip show identify byname-identify"],
                               capture_output=True, text=True, timeout=20).stdout
        # PJSIP resolved both names: the carrier's address and both of multi.lab.carrier's.
        assert "127.0.0.10" in shown and "127.0.0.13" in shown, shown
    finally:
        labtools.run_on(d, [])
