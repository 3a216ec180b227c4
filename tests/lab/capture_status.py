#!/usr/bin/env python3
"""Capture what real Asterisk prints in each registration state the lab can produce.

Writes tests/data/captures/a<major>/<command>--<situation>.txt (CLI) and .ami.txt (AMI), which feed
the unit tests of the status parsers. Run with the lab up (`make captures`); it puts the dialers'
toolkit files back as they were when done.

States: Registered (good account), Auth. Sent / Rejected (wrong secret: Kamailio re-challenges),
No Authentication (403 for a forbidden user), Rejected (404 for an unknown user), Request Sent /
Unregistered (nobody answers on the port), a reachable and an unreachable qualified peer.
"""
import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import labtools  # noqa: E402

OUT = os.path.join(labtools.ROOT, "tests", "data", "captures")
SINK = "127.0.0.19"  # nothing listens here: no answer


def rx(root, command):
    return subprocess.run(["chroot", root, "asterisk", "-rx", command], capture_output=True, text=True,
                          timeout=20).stdout


def ami(address, port, user, secret, action, complete):
    client = labtools.AMI(address, port, user, secret)
    try:
        msgs = client.action(action, complete=complete)
    finally:
        client.close()
    return "\n\n".join("\n".join("%s: %s" % kv for kv in m.items()) for m in msgs) + "\n"


def situations(d, data):
    """Registrations per situation: (sip lines, iax lines, pjsip text, sip peers, pjsip ip endpoints)."""
    acc = d["accounts"]
    kam = data["sip_carrier"]["address"]
    iax = data["iax_carrier"]["address"]
    sip_user = acc.get("sip", acc["long"])
    pj = acc["pjsip"]

    def pjreg(name, user, password, host, port):
        return ("[%s-reg]\ntype=registration\ntransport=transport-udp\noutbound_auth=%s-auth\n"
                "server_uri=sip:%s:%d\nclient_uri=sip:%s@%s:%d\ncontact_user=%s\nretry_interval=5\n"
                "max_retries=100\nauth_rejection_permanent=no\nmax_random_initial_delay=0\n\n[%s-auth]\ntype=auth\nauth_type=userpass\n"
                "username=%s\npassword=%s\n\n" % (name, name, host, port, user, host, port, user, name, user,
                                                   password))

    def pjpeer(name, host):
        return ("[%s]\ntype=endpoint\ntransport=transport-udp\ncontext=trunkinbound\naors=%s\n\n[%s]\ntype=aor\n"
                "contact=sip:%s:5060\nqualify_frequency=5\n\n" % (name, name, name, host))

    return {
        "registered": (
            ["%s:%s@%s:5060/%s" % (sip_user["username"], sip_user["password"], kam, sip_user["username"]),
             "%s:%s@%s:5060/%s" % (acc["long"]["username"], acc["long"]["password"], kam, acc["long"]["username"])],
            ["%s:%s@%s" % (acc["iax2"]["username"], acc["iax2"]["password"], iax)],
            pjreg("capgood", pj["username"], pj["password"], kam, 5060),
            "[cappeer]\ntype=peer\nhost=%s\nqualify=yes\ncontext=trunkinbound\n" % kam,
            pjpeer("cappeer", kam)),
        "wrong-secret": (
            ["%s:wrong-secret@%s:5060" % (sip_user["username"], kam)],
            ["%s:wrong-secret@%s" % (acc["iax2"]["username"], iax)],
            pjreg("capbad", pj["username"], "wrong-secret", kam, 5060),
            "", ""),
        "forbidden-and-unknown": (
            ["blockeduser:x@%s:5060" % kam, "nosuchuser:x@%s:5060" % kam],
            [], pjreg("capunknown", "nosuchuser", "x", kam, 5060), "", ""),
        "no-answer": (
            ["%s:%s@%s:5099" % (sip_user["username"], sip_user["password"], SINK)],
            ["%s:%s@%s:4599" % (acc["iax2"]["username"], acc["iax2"]["password"], SINK)],
            pjreg("capnoanswer", pj["username"], pj["password"], SINK, 5099),
            "[capdead]\ntype=peer\nhost=%s\nport=5099\nqualify=yes\nqualifyfreq=5\ncontext=trunkinbound\n" % SINK,
            pjpeer("capdead", SINK)),
    }


def main():
    data = labtools.facts()
    for d in data["dialers"][:2]:
        root, major = d["root"], d["asterisk_major"]
        conf = os.path.join(root, "etc", "asterisk")
        names = ["vicireg-sip-register.conf", "vicireg-sip-peers.conf", "vicireg-iax-register.conf",
                 "vicireg-iax-peers.conf", "vicireg-pjsip.conf"]
        saved = {}
        for n in names:
            p = os.path.join(conf, n)
            saved[n] = open(p).read() if os.path.exists(p) else None
        outdir = os.path.join(OUT, "a%d" % major)
        os.makedirs(outdir, exist_ok=True)
        try:
            for situation, (sip, iaxl, pjs, peers, pjpeers) in situations(d, data).items():
                has_sip = d.get("chan_sip")
                files = {
                    "vicireg-sip-register.conf": "".join("register => %s\n" % x for x in sip) if has_sip else "",
                    "vicireg-sip-peers.conf": peers if has_sip else "",
                    "vicireg-iax-register.conf": "".join("register => %s\n" % x for x in iaxl),
                    "vicireg-iax-peers.conf": "",
                    "vicireg-pjsip.conf": pjs + pjpeers,
                }
                for n, text in files.items():
                    with open(os.path.join(conf, n), "w") as handle:
                        handle.write(text)
                for cmd in (["sip reload"] if has_sip else []) + ["iax2 reload", "module reload res_pjsip.so"]:
                    rx(root, cmd)
                for line in pjs.splitlines():
                    if line.startswith("[") and line.endswith("-reg]"):
                        rx(root, "pjsip send register %s" % line[1:-1])
                time.sleep(8)  # let every state settle (re-challenges, 403/404, retransmit timers)
                commands = ["iax2 show registry", "pjsip show registrations", "pjsip show contacts",
                            "pjsip show aors", "pjsip show transports"]
                if has_sip:
                    commands += ["sip show registry", "sip show peers", "sip show settings"]
                    for peer in ("cappeer", "capdead"):
                        if peer in peers:
                            commands.append("sip show peer %s" % peer)
                for cmd in commands:
                    with open(os.path.join(outdir, "%s--%s.txt" % (cmd.replace(" ", "_"), situation)), "w") as h:
                        h.write(rx(root, cmd))
                ami_actions = [("IAXregistry", "RegistrationsComplete"),
                               ("PJSIPShowRegistrationsOutbound", "OutboundRegistrationDetailComplete")]
                if has_sip:
                    ami_actions.append(("SIPshowregistry", "RegistrationsComplete"))
                for action, complete in ami_actions:
                    text = ami(d["address"], data["ami"]["port"], data["ami"]["username"], data["ami"]["secret"],
                               action, complete)
                    with open(os.path.join(outdir, "%s--%s.ami.txt" % (action, situation)), "w") as h:
                        h.write(text)
                print("a%d %s captured" % (major, situation))
        finally:
            for n, text in saved.items():
                p = os.path.join(conf, n)
                if text is None:
                    if os.path.exists(p):
                        os.remove(p)
                else:
                    with open(p, "w") as handle:
                        handle.write(text)
            for cmd in (["sip reload"] if d.get("chan_sip") else []) + ["iax2 reload", "module reload res_pjsip.so"]:
                rx(root, cmd)
        with open(os.path.join(outdir, "VERSION.txt"), "w") as h:
            h.write(rx(root, "core show version"))
    print(json.dumps({"written": OUT}))


if __name__ == "__main__":
    socket.setdefaulttimeout(20)
    main()
