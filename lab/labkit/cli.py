"""The command line of lab/labctl.py."""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import dns, registrar
from .config import ROOTS_DIR, LabError, all_accounts, dialer_hosts, load_config
from .hosts import known_host_dirs, ssh_command
from .lifecycle import cmd_down, cmd_up, collect_status, on_signal
from .machine import ensure_host_packages, lab_lock, require_root
from .procs import mounts_under
from .roots import build_roots, cleanup_stale_builds, point_resolver, root_stamp, root_valid

USAGE = """\
    python3 lab/labctl.py up [--hosts N]    build (cached) roots if needed, start the DNS (unbound), the SIP
                                            carrier (Kamailio), the IAX2 carrier and N dialers; idempotent
    python3 lab/labctl.py down              stop everything the lab started, unmount everything
    python3 lab/labctl.py status [--json]   what runs (exit 0 up, 1 degraded, 3 down)
    python3 lab/labctl.py build [--force]   only (re)build the cached Debian roots
    python3 lab/labctl.py accounts          carrier accounts and their (lab-only) passwords
    python3 lab/labctl.py ssh HOST [CMD..]  ssh into a dialer with the lab key
    python3 lab/labctl.py dns add NAME TYPE DATA..   A/AAAA ADDRESS, SRV PRIO WEIGHT PORT TARGET,
                                            NAPTR ORDER PREF FLAGS SERVICE REGEXP REPLACEMENT (at once)
    python3 lab/labctl.py dns del NAME [TYPE [DATA..]] | dns list [--json] | dns reset
    python3 lab/labctl.py dns query NAME [TYPE] [--tcp] [--json]   (exit 0 answers, 2 none, 1 error)
    python3 lab/labctl.py registrar contacts [USER] | registers [--since-line N] [--stage S] | flush USER
"""


def cmd_status(cfg: dict, as_json: bool) -> int:
    require_root()   # /proc/PID/root of the lab's processes is readable by root only
    s = collect_status(cfg)
    if as_json:
        print(json.dumps(s, indent=2))
    else:
        print(f"lab: {s['status']}  (state.json: {s['state_file']}, dialers requested: {s['hosts_requested']}, "
              f"mounts: {s['mounts']}, processes: {s['processes']})")
        for r, info in s["roots"].items():
            print(f"  root {r:4} {'cached' if info['cached'] else 'missing'}"
                  f"{'' if info['current'] or not info['cached'] else ' (stale recipe)'}  {info['asterisk'] or ''}")
        print(f"  {'NAME':14} {'ROLE':22} {'ADDRESS':17} {'PID':>7}  STATE    DETAIL")
        for c in s["components"]:
            print(f"  {c['name']:14} {c['role']:22} {c['address']:17} {str(c['pid'] or '-'):>7}  "
                  f"{'running' if c['running'] else 'DOWN':8} {c['detail']}")
    return {"up": 0, "degraded": 1}.get(s["status"], 3)


def cmd_build(cfg: dict, force: bool) -> int:
    import signal

    require_root()
    signal.signal(signal.SIGTERM, on_signal)
    with lab_lock():
        ensure_host_packages(cfg)
        cleanup_stale_builds()
        names = [r for r in cfg["roots"] if force or not root_valid(cfg, r)]
        if names:
            in_use = [h for h in known_host_dirs(cfg) if h.flavor in names and mounts_under([str(h.dir)])]
            if in_use:
                raise LabError(f"roots {names} are in use by running hosts: run `labctl.py down` first")
        build_roots(cfg, names)
        for r in names:
            point_resolver(cfg, r)
    for r in cfg["roots"]:
        print(f"root {r}: {(root_stamp(r) or {}).get('asterisk_version')}  {ROOTS_DIR / r}")
    return 0


def cmd_accounts(cfg: dict) -> int:
    print("# LAB-ONLY carrier accounts (password = 'lab' + sha256('<seed>:<username>')[:16])")
    print(f"{'IDX':>3}  {'KIND':9} {'CARRIER':7} {'USERNAME':18} {'AUTHUSER':12} PASSWORD")
    for a in all_accounts(cfg):
        print(f"{a['index']:>3}  {a['kind']:9} {a['carrier']:7} {a['username']:18} "
              f"{a.get('authuser', '-'):12} {a['password']}")
    print(f"forbidden (403): {', '.join(cfg['accounts'].get('forbidden') or [])}")
    return 0


def cmd_ssh(cfg: dict, name: str, remote: list[str]) -> int:
    hosts = {h.name: h for h in dialer_hosts(cfg, int(cfg["lab"]["max_hosts"]))}
    if name not in hosts:
        raise LabError(f"unknown dialer {name!r} (e.g. lab-a16-01, lab-a22-02)")
    cmd = ssh_command(cfg, hosts[name], " ".join(remote) if remote else None)
    if not remote:
        cmd.insert(1, "-t")
    os.execvp(cmd[0], cmd)
    return 0


def cmd_dns(cfg: dict, args) -> int:
    ttl = int(cfg["dns"].get("ttl", 1))
    if args.dns_cmd == "add":
        require_root()
        rec, added = dns.add_record(cfg, [args.name, args.type, *args.data])
        print(f"{'added' if added else 'already present'}: {dns.rr_text(rec, ttl)}")
        return 0
    if args.dns_cmd == "del":
        require_root()
        if args.data and not args.type:
            raise LabError("dns del NAME [TYPE [DATA...]]")
        for rec in dns.del_records(cfg, args.name, args.type, args.data or None):
            print(f"removed: {dns.rr_text(rec, ttl)}")
        return 0
    if args.dns_cmd == "reset":
        require_root()
        print(f"lab DNS back to the zone of lab.toml ({dns.reset_records(cfg)} name(s) changed)")
        return 0
    if args.dns_cmd == "list":
        records = dns.load_records(cfg)
        if args.json:
            print(json.dumps(records, indent=2))
        else:
            for rec in records:
                print(dns.rr_text(rec, ttl))
        return 0
    res = dns.query(cfg, args.name, args.type, timeout=args.timeout, tcp=args.tcp)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f";; {res['question']['name']} {res['question']['type']}: {res['rcode']}, "
              f"{len(res['answers'])} answer(s), {res['seconds'] * 1000:.1f} ms")
        for a in res["answers"]:
            print(f"{a['name']}\t{a['ttl']}\tIN\t{a['type']}\t{a['value']}")
    return 0 if res["answers"] else 2


def cmd_registrar(cfg: dict, args) -> int:
    if args.reg_cmd == "contacts":
        print(json.dumps(registrar.contacts(args.user), indent=2))
    elif args.reg_cmd == "registers":
        print(json.dumps(registrar.registers(args.since_line, args.stage), indent=2))
    else:
        found = registrar.flush(args.user)
        print(f"{args.user}: {'contacts removed' if found else 'had no contact'}")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="labctl.py", description="vicireg loopback test lab",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=USAGE)
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build (cached) and start the lab; idempotent")
    up.add_argument("--hosts", type=int, default=None, help="number of dialers (default from lab.toml)")
    sub.add_parser("down", help="stop everything, unmount everything; idempotent")
    st = sub.add_parser("status", help="print the lab's state")
    st.add_argument("--json", action="store_true")
    b = sub.add_parser("build", help="only build the cached roots")
    b.add_argument("--force", action="store_true", help="rebuild even when the recipe is unchanged")
    sub.add_parser("accounts", help="print the carrier accounts (lab-only secrets)")
    s = sub.add_parser("ssh", help="ssh into a lab dialer with the lab key")
    s.add_argument("host")
    s.add_argument("remote", nargs=argparse.REMAINDER)

    d = sub.add_parser("dns", help="the lab DNS: add/del/list records, query it")
    dsub = d.add_subparsers(dest="dns_cmd", required=True)
    a = dsub.add_parser("add", help="add a record (effective at once): NAME TYPE DATA...")
    a.add_argument("name")
    a.add_argument("type", help="A, AAAA, SRV or NAPTR")
    a.add_argument("data", nargs=argparse.REMAINDER, help="the record's data")
    r = dsub.add_parser("del", help="remove records: NAME [TYPE [DATA...]]")
    r.add_argument("name")
    r.add_argument("type", nargs="?")
    r.add_argument("data", nargs=argparse.REMAINDER)
    ls = dsub.add_parser("list", help="the records now")
    ls.add_argument("--json", action="store_true")
    dsub.add_parser("reset", help="back to the zone of lab.toml")
    q = dsub.add_parser("query", help="ask the lab DNS (exit 0: answers, 2: none, 1: error)")
    q.add_argument("name")
    q.add_argument("type", nargs="?", default="A")
    q.add_argument("--tcp", action="store_true")
    q.add_argument("--json", action="store_true")
    q.add_argument("--timeout", type=float, default=1.0)

    g = sub.add_parser("registrar", help="what the SIP carrier saw: contacts, REGISTER lines")
    gsub = g.add_subparsers(dest="reg_cmd", required=True)
    c = gsub.add_parser("contacts", help="contacts in Kamailio's location table (JSON)")
    c.add_argument("user", nargs="?")
    rg = gsub.add_parser("registers", help="the VICIREG-REGISTER lines of kamailio.log (JSON)")
    rg.add_argument("--since-line", type=int, default=0, help="only lines after this line number")
    rg.add_argument("--stage", choices=("received", "reply"))
    f = gsub.add_parser("flush", help="drop a user's contacts (ul.rm location USER)")
    f.add_argument("user")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = load_config()
        if args.cmd == "up":
            env_n = os.environ.get("LAB_HOSTS")
            n = args.hosts if args.hosts is not None else int(env_n or cfg["lab"]["default_hosts"])
            return cmd_up(cfg, n)
        if args.cmd == "down":
            return cmd_down(cfg)
        if args.cmd == "status":
            return cmd_status(cfg, args.json)
        if args.cmd == "build":
            return cmd_build(cfg, args.force)
        if args.cmd == "accounts":
            return cmd_accounts(cfg)
        if args.cmd == "ssh":
            return cmd_ssh(cfg, args.host, args.remote)
        if args.cmd == "dns":
            return cmd_dns(cfg, args)
        if args.cmd == "registrar":
            return cmd_registrar(cfg, args)
    except LabError as exc:
        print(f"labctl: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("labctl: interrupted (what this run started was stopped again)", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if isinstance(exc.code, int) and exc.code > 128:
            print(f"labctl: terminated by signal {exc.code - 128} (what this run started was stopped again)",
                  file=sys.stderr)
        raise
    return 2
