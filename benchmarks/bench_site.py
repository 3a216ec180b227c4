#!/usr/bin/env python3
"""site.yml on one lab dialer with three carriers (chan_sip, PJSIP, IAX2): wall times and verdict times.

Prints, with the lab up (make lab):
  - a changing run and a no-op run (wall seconds; reloads and REGISTERs the carrier saw in the no-op),
  - verdict seconds after the reload: success, wrong secret, no answer (against its timeout),
  - the procedure it replaces, run in the same command: write the config, restart Asterisk, wait 60 s,
    grep `sip show registry`, and the ratio of the two.
Usage: python3 benchmarks/bench_site.py [--skip-old-procedure]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import labtools  # noqa: E402

PLAYBOOK = os.path.join(ROOT, ".venv", "bin", "ansible-playbook")
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
KAMAILIO_LOG = "/var/lib/vicireg-lab/kamailio/kamailio.log"


def three_carriers(facts, d, extension=None, sip_secret=None, pjsip_port=5060, timeout=8):
    acc, kam, iax = d["accounts"], facts["sip_carrier"]["address"], facts["iax_carrier"]["address"]
    sip = acc["sip"]
    return [
        {"name": "labsip", "timeout": timeout, "registration": "%s:%s@%s:5060/%s" % (
            sip["username"], sip_secret or sip["password"], kam, extension or sip["username"])},
        {"name": "labpjsip", "protocol": "pjsip", "timeout": timeout, "registration": "%s:%s@%s:%d/%s" % (
            acc["pjsip"]["username"], acc["pjsip"]["password"], kam, pjsip_port, acc["pjsip"]["username"])},
        {"name": "labiax", "protocol": "iax2", "timeout": timeout, "registration": "%s:%s@%s" % (
            acc["iax2"]["username"], acc["iax2"]["password"], iax)},
    ]


def run(d, carriers):
    path = os.path.join(ROOT, ".bench-vars.json")
    with open(path, "w") as handle:
        json.dump({"carriers": carriers}, handle)
    start = time.time()
    out = subprocess.run([PLAYBOOK, "site.yml", "--limit", d["name"], "-e", "@" + path],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    wall = time.time() - start
    os.remove(path)
    with open(os.path.join(ROOT, "reports", "registrations.json")) as handle:
        report = {r["carrier"]: r for r in json.load(handle) if r["host"] == d["name"]}
    return wall, out.returncode, report, out.stdout


def registers_seen(address):
    with open(KAMAILIO_LOG) as handle:
        return sum(1 for line in handle if "REGISTER" in line and "from %s:" % address in line)


def rx(d, command):
    return subprocess.run(["chroot", d["root"], "asterisk", "-rx", command], capture_output=True, text=True,
                          timeout=30).stdout


def old_procedure(d):
    """Template, restart Asterisk, wait 60 s, grep: what operators do today."""
    start = time.time()
    rx(d, "core restart now")
    time.sleep(60)
    deadline = time.time() + 30
    while time.time() < deadline and "Registered" not in rx(d, "sip show registry"):
        time.sleep(1)
    return time.time() - start, "Registered" in rx(d, "sip show registry")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-old-procedure", action="store_true")
    args = parser.parse_args()
    facts = labtools.facts()
    d = labtools.dialer(facts, 16)
    run(d, three_carriers(facts, d))  # converge first (not measured)
    rows = []
    wall_change, rc, rep, _ = run(d, three_carriers(facts, d, extension="1001"))
    rows.append(("changing run (one carrier changed), wall", wall_change, "target <= 10 s", rc == 0 and wall_change <= 10))
    success = max(r["seconds"] for r in rep.values())
    rows.append(("  success verdict, s after reload (slowest carrier)", success, "", rc == 0 and success <= 10))
    before = registers_seen(d["address"])
    regtime = re.findall(r"Registered\s+(.+)$", rx(d, "sip show registry"), re.MULTILINE)
    wall_noop, rc, rep, out = run(d, three_carriers(facts, d, extension="1001"))
    time.sleep(1)
    extra = registers_seen(d["address"]) - before
    same_regtime = regtime == re.findall(r"Registered\s+(.+)$", rx(d, "sip show registry"), re.MULTILINE)
    rows.append(("no-op run, wall", wall_noop, "target <= 5 s", rc == 0 and "no change" in out and wall_noop <= 5))
    rows.append(("  REGISTERs the carrier saw during the no-op run", extra, "target 0", extra == 0))
    rows.append(("  chan_sip re-registered during the no-op run (reload)", 0 if same_regtime else 1, "target 0",
                 same_regtime))
    wall_bad, rc, rep, _ = run(d, three_carriers(facts, d, sip_secret="WrongSecret-bench"))
    rows.append(("wrong secret: verdict, s after reload", rep["labsip"]["seconds"], "target <= 5 s",
                 rc != 0 and rep["labsip"]["verdict"] == "failed" and rep["labsip"]["seconds"] <= 5))
    rows.append(("  wrong-secret run incl. rollback, wall", wall_bad, "", rc != 0))
    timeout = 6
    wall_port, rc, rep, _ = run(d, three_carriers(facts, d, pjsip_port=5099, timeout=timeout))
    rows.append(("no answer: verdict, s after reload (timeout %d s)" % timeout, rep["labpjsip"]["seconds"],
                 "target <= timeout + 2 s", rc != 0 and rep["labpjsip"]["seconds"] <= timeout + 2))
    run(d, three_carriers(facts, d))  # back to the working config
    print("site.yml on %s, three carriers (chan_sip, PJSIP, IAX2)" % d["name"])
    for label, value, target, ok in rows:
        print("%-58s %8.2f  %-24s %s" % (label, value, target, "ok" if ok else "MISSED"))
    if not args.skip_old_procedure:
        old, registered = old_procedure(d)
        subprocess.run([sys.executable, os.path.join(ROOT, "lab", "labctl.py"), "up"], capture_output=True,
                       timeout=300)
        print("%-58s %8.2f  %s" % ("old procedure: restart, wait 60 s, grep sip show registry", old,
                                   "registered" if registered else "NOT registered"))
        print("%-58s %8.2f  %s" % ("new changing run, same command", wall_change, ""))
        print("%-58s %8.1fx" % ("ratio old / new (changing run)", old / wall_change))


if __name__ == "__main__":
    main()
