"""The lab DNS server: unbound from the machine's Debian package, our own instance on
127.0.0.9:53 (udp + tcp), config, records and control socket in /var/lib/vicireg-lab/dns/.

Why unbound: records are added and removed at run time through unbound-control (local_data /
local_data_remove) without a restart, SRV and NAPTR are plain local-data, and a static local zone
"." answers every other name NXDOMAIN at once (no internet, no waiting for a timeout).

Records: "NAME TYPE DATA" (A, AAAA, SRV, NAPTR), TTL from lab.toml [dns] ttl. The base zone is in
lab.toml; records.json holds the current set (base + runtime changes) so that a restart of unbound
keeps them; `down` removes it (the next `up` starts from the base zone again)."""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
import shlex
import shutil
import time

from . import dnswire
from .config import CHROOT_ENV, DNS_CFG, DNS_DIR, FACTS_FILE, LabError
from .machine import file_lock
from .procs import (atomic_write, kill_pids, log_tail, pid_alive, proc_cmdline, proc_comm, processes_referencing,
                    read_pid, run, spawn_daemon)

DNS_RECORDS = DNS_DIR / "records.json"
DNS_RECORDS_CONF = DNS_DIR / "records.conf"
DNS_CTL = DNS_DIR / "unbound.ctl"
DNS_LOG = DNS_DIR / "unbound.log"
DNS_PID = DNS_DIR / "main.pid"
DNS_LOCK = DNS_DIR / "records.lock"
RECORD_TYPES = ("A", "AAAA", "SRV", "NAPTR")

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_NAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


# --------------------------------------------------------------------------------------------
# Records: parsing and validation
# --------------------------------------------------------------------------------------------

def check_name(name: str, what: str = "name") -> str:
    """A DNS name (letters, digits, '-', '_' labels of 1-63): lower case, without the final dot."""
    if not name or len(name.rstrip(".")) > 253 or not _NAME_RE.match(name):
        raise LabError(f"invalid DNS {what} {name!r}: labels of letters, digits, '-' and '_' (1-63 "
                       "characters each, not starting or ending with '-'), separated by dots")
    return name.rstrip(".").lower()


def _target(name: str, what: str) -> str:
    return "." if name == "." else check_name(name, what) + "."


def _number(text: str, what: str, top: int = 65535) -> int:
    if not re.fullmatch(r"\d{1,5}", text or "") or int(text) > top:
        raise LabError(f"invalid {what} {text!r}: a whole number 0..{top}")
    return int(text)


def _string(text: str, what: str, pattern: str) -> str:
    if len(text) > 255 or not re.fullmatch(pattern, text):
        raise LabError(f"invalid NAPTR {what} {text!r}")
    return text


def parse_value(rtype: str, args: list[str]) -> str:
    """The canonical DATA of a record of rtype from its words (as `dns add` takes them)."""
    rtype = rtype.upper()
    want = {"A": 1, "AAAA": 1, "SRV": 4, "NAPTR": 6}.get(rtype)
    if want is None:
        raise LabError(f"invalid record type {rtype!r}: one of {', '.join(RECORD_TYPES)}")
    if len(args) != want:
        usage = {"A": "ADDRESS", "AAAA": "ADDRESS", "SRV": "PRIORITY WEIGHT PORT TARGET",
                 "NAPTR": "ORDER PREF FLAGS SERVICE REGEXP REPLACEMENT"}[rtype]
        raise LabError(f"a {rtype} record takes {want} value(s): {usage} (got {len(args)}: {args})")
    if rtype in ("A", "AAAA"):
        try:
            ip = (ipaddress.IPv4Address if rtype == "A" else ipaddress.IPv6Address)(args[0])
        except ValueError:
            raise LabError(f"invalid {'IPv4' if rtype == 'A' else 'IPv6'} address {args[0]!r} "
                           f"for an {rtype} record") from None
        return str(ip)
    if rtype == "SRV":
        prio, weight, port = (_number(a, w) for a, w in zip(args[:3], ("SRV priority", "SRV weight", "SRV port")))
        return f"{prio} {weight} {port} {_target(args[3], 'SRV target')}"
    order, pref = _number(args[0], "NAPTR order"), _number(args[1], "NAPTR preference")
    flags = _string(args[2], "flags (letters and digits)", r"[A-Za-z0-9]*")
    service = _string(args[3], "service (e.g. SIP+D2U)", r"[A-Za-z0-9+:._-]*")
    regexp = _string(args[4], "regexp (printable, no '\"' or '\\')", r"[ -!#-\[\]-~]*")
    return f'{order} {pref} "{flags}" "{service}" "{regexp}" {_target(args[5], "NAPTR replacement")}'


def parse_record(words: list[str]) -> dict:
    """['NAME', 'TYPE', DATA...] -> {'name', 'type', 'value'} (validated, canonical)."""
    if len(words) < 3:
        raise LabError(f"a record is NAME TYPE DATA... (got {words})")
    rtype = words[1].upper()
    return {"name": check_name(words[0]), "type": rtype, "value": parse_value(rtype, words[2:])}


def rr_text(rec: dict, ttl: int) -> str:
    return f"{rec['name']}. {ttl} IN {rec['type']} {rec['value']}"


def base_records(cfg: dict) -> list[dict]:
    out = []
    for line in cfg["dns"].get("records") or []:
        try:
            rec = parse_record(shlex.split(line))
        except (LabError, ValueError) as exc:
            raise LabError(f"lab.toml [dns] records: {line!r}: {exc}") from None
        if rec not in out:
            out.append(rec)
    return out


def _base_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps([base_records(cfg), cfg["dns"].get("ttl", 1)]).encode()).hexdigest()


def load_records(cfg: dict) -> list[dict]:
    """The current records: records.json when it belongs to this base zone, else the base zone."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads(DNS_RECORDS.read_text())
        if saved["base_hash"] == _base_hash(cfg):
            return [dict(r) for r in saved["records"]]
    return base_records(cfg)


def _save_records(cfg: dict, records: list[dict]) -> None:
    atomic_write(DNS_RECORDS, json.dumps({"base_hash": _base_hash(cfg), "records": records}, indent=2) + "\n")
    atomic_write(DNS_RECORDS_CONF, records_conf_text(cfg, records))
    with contextlib.suppress(OSError, ValueError):   # lab-facts.json shows the current zone too
        facts = json.loads(FACTS_FILE.read_text())
        if isinstance(facts.get("dns"), dict):
            facts["dns"]["records"] = records
            atomic_write(FACTS_FILE, json.dumps(facts, indent=2) + "\n", mode=0o600)


# --------------------------------------------------------------------------------------------
# unbound: configuration, start, stop, health
# --------------------------------------------------------------------------------------------

def unbound_conf_text(cfg: dict) -> str:
    d = cfg["dns"]
    return f"""# vicireg lab DNS - generated by lab/labctl.py (lab/labkit/dns.py). Records: records.conf.
server:
    verbosity: 1
    interface: {d['address']}
    port: {int(d['port'])}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "{DNS_DIR}"
    pidfile: "{DNS_DIR / 'unbound.pid'}"
    logfile: ""
    use-syslog: no
    log-time-ascii: yes
    num-threads: 1
    module-config: "iterator"
    msg-cache-size: 1m
    rrset-cache-size: 1m
    # no internet: every name that is not ours is NXDOMAIN at once
    local-zone: "." static
    local-zone: "{d['zone']}." static
    include: "{DNS_RECORDS_CONF}"

remote-control:
    control-enable: yes
    control-interface: "{DNS_CTL}"
    control-use-cert: no
"""


def records_conf_text(cfg: dict, records: list[dict]) -> str:
    ttl = int(cfg["dns"].get("ttl", 1))
    lines = ["# vicireg lab DNS records - generated (labctl.py dns add/del); records.json is the source",
             "server:"] + [f"    local-data: '{rr_text(r, ttl)}'" for r in records]
    return "\n".join(lines) + "\n"


def unbound_bin(name: str = "unbound") -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def dns_pids() -> list[int]:
    return [p for p in processes_referencing(str(DNS_CFG)) if proc_comm(p) == "unbound"]


def dns_health(cfg: dict) -> tuple[bool, str]:
    pid = read_pid(DNS_PID)
    if not pid_alive(pid) or str(DNS_CFG) not in proc_cmdline(pid):
        return False, "not running"
    with contextlib.suppress(OSError):
        if DNS_CFG.read_text() != unbound_conf_text(cfg):
            return False, "configuration changed"
    with contextlib.suppress(OSError, ValueError):
        # The records it serves belong to another zone of lab.toml: start over from the new one.
        if json.loads(DNS_RECORDS.read_text()).get("base_hash") != _base_hash(cfg):
            return False, "zone of lab.toml changed"
    ok, detail = probe(cfg)
    return (True, "running") if ok else (False, detail)


def stop_dns(reap_wait: float = 0.5, reset_records: bool = False) -> None:
    pids = dns_pids()
    main = read_pid(DNS_PID)
    if main and pid_alive(main) and str(DNS_CFG) in proc_cmdline(main):
        pids.insert(0, main)
    kill_pids(pids, "unbound (lab DNS)", reap_wait=reap_wait)
    for f in (DNS_PID, DNS_DIR / "unbound.pid", DNS_CTL):
        f.unlink(missing_ok=True)
    if reset_records:
        DNS_RECORDS.unlink(missing_ok=True)


def start_dns(cfg: dict) -> int:
    DNS_DIR.mkdir(parents=True, exist_ok=True)
    with file_lock(DNS_LOCK):
        records = load_records(cfg)
        _save_records(cfg, records)
    atomic_write(DNS_CFG, unbound_conf_text(cfg))
    cp = run([unbound_bin("unbound-checkconf"), str(DNS_CFG)], check=False, timeout=30)
    if cp.returncode != 0:
        msg = (cp.stderr + cp.stdout).strip().splitlines()
        raise LabError(f"generated unbound configuration is invalid: {(msg or ['?'])[0][:200]}")
    DNS_CTL.unlink(missing_ok=True)
    return spawn_daemon([unbound_bin(), "-d", "-c", str(DNS_CFG)], DNS_LOG, DNS_PID, CHROOT_ENV)


def probe(cfg: dict, timeout: float = 0.5) -> tuple[bool, str]:
    """Does the lab DNS answer (`<zone> A`, with the stdlib client)? Any authoritative answer
    counts (`dns del` may have removed the record on purpose); the detail shows what it said."""
    d = cfg["dns"]
    try:
        res = dnswire.query(d["zone"], "A", d["address"], int(d["port"]), timeout=timeout)
    except (dnswire.DNSQueryError, OSError) as exc:
        return False, f"no answer: {exc}"
    got = [a["value"] for a in res["answers"] if a["type"] == "A"]
    if res["rcode"] not in ("NOERROR", "NXDOMAIN"):
        return False, f"{d['zone']} A: {res['rcode']}"
    return True, f"{d['zone']} A {', '.join(got) or res['rcode'] + ' (no A record)'} ({res['seconds'] * 1000:.1f} ms)"


def wait_dns_ready(cfg: dict, deadline: float) -> dict:
    while True:
        pid = read_pid(DNS_PID)
        if not pid_alive(pid):
            tail = [ln for ln in log_tail(DNS_LOG, 30).splitlines() if "error" in ln.lower()]
            raise LabError(f"unbound exited during start: {(tail or ['see ' + str(DNS_LOG)])[-1][:250]}")
        ok, detail = probe(cfg, timeout=0.3)
        if ok and DNS_CTL.exists():
            return {"pid": pid}
        if time.monotonic() > deadline:
            raise LabError(f"the lab DNS (unbound) does not answer on {cfg['dns']['address']}: {detail} "
                           f"[log: {DNS_LOG}]")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# Runtime changes (unbound-control) and queries
# --------------------------------------------------------------------------------------------

def _control(*args: str) -> None:
    cp = run([unbound_bin("unbound-control"), "-c", str(DNS_CFG), *args], check=False, timeout=10)
    if cp.returncode != 0 or "error" in cp.stdout.lower():
        raise LabError(f"unbound-control {args[0]} failed: {(cp.stderr + cp.stdout).strip()[:200]}")


def _require_running(cfg: dict) -> None:
    pid = read_pid(DNS_PID)
    if not pid_alive(pid) or str(DNS_CFG) not in proc_cmdline(pid) or not DNS_CTL.exists():
        raise LabError("the lab DNS (unbound) is not running: `python3 lab/labctl.py up` first")


def add_record(cfg: dict, words: list[str]) -> tuple[dict, bool]:
    """Add one record (NAME TYPE DATA...); effective at once. Returns (record, added)."""
    rec = parse_record(words)
    _require_running(cfg)
    with file_lock(DNS_LOCK):
        records = load_records(cfg)
        if rec in records:
            return rec, False
        _control("local_data", rr_text(rec, int(cfg["dns"].get("ttl", 1))))
        _save_records(cfg, records + [rec])
    return rec, True


def del_records(cfg: dict, name: str, rtype: str | None = None, value: list[str] | None = None) -> list[dict]:
    """Remove the records of name (of rtype, with that value); the others of name stay.
    unbound-control local_data_remove drops every record of a name: the remaining ones go back."""
    name = check_name(name)
    if rtype is not None:
        rtype = rtype.upper()
        if rtype not in RECORD_TYPES:
            raise LabError(f"invalid record type {rtype!r}: one of {', '.join(RECORD_TYPES)}")
    canon = parse_value(rtype, value) if value else None
    _require_running(cfg)
    ttl = int(cfg["dns"].get("ttl", 1))
    with file_lock(DNS_LOCK):
        records = load_records(cfg)
        gone = [r for r in records if r["name"] == name and (rtype is None or r["type"] == rtype)
                and (canon is None or r["value"] == canon)]
        if not gone:
            what = " ".join(x for x in (name, rtype, canon) if x)
            raise LabError(f"no such record in the lab DNS: {what}")
        keep = [r for r in records if r not in gone]
        _control("local_data_remove", name + ".")
        for r in keep:
            if r["name"] == name:
                _control("local_data", rr_text(r, ttl))
        _save_records(cfg, keep)
    return gone


def reset_records(cfg: dict) -> int:
    """Back to the base zone of lab.toml (every runtime change undone); returns how many names changed."""
    _require_running(cfg)
    ttl = int(cfg["dns"].get("ttl", 1))
    with file_lock(DNS_LOCK):
        now, base = load_records(cfg), base_records(cfg)
        changed = sorted({r["name"] for r in now if r not in base} | {r["name"] for r in base if r not in now})
        # Every name is written again: unbound may still serve the zone of an older lab.toml.
        for name in sorted({r["name"] for r in now} | {r["name"] for r in base}):
            _control("local_data_remove", name + ".")
            for r in base:
                if r["name"] == name:
                    _control("local_data", rr_text(r, ttl))
        _save_records(cfg, base)
    return len(changed)


def query(cfg: dict, name: str, rtype: str = "A", timeout: float = 1.0, tcp: bool = False) -> dict:
    """One question to the lab DNS (stdlib client, lab/labkit/dnswire.py)."""
    rtype = rtype.upper()
    if rtype not in dnswire.TYPES:
        raise LabError(f"invalid query type {rtype!r}: one of {', '.join(dnswire.TYPES)}")
    d = cfg["dns"]
    try:
        return dnswire.query(check_name(name), rtype, d["address"], int(d["port"]), timeout=timeout, tcp=tcp)
    except dnswire.DNSQueryError as exc:
        raise LabError(str(exc)) from None


def facts(cfg: dict) -> dict:
    d = cfg["dns"]
    return {"address": d["address"], "port": int(d["port"]), "transports": ["udp", "tcp"], "zone": d["zone"],
            "ttl": int(d.get("ttl", 1)), "software": "unbound", "records": load_records(cfg),
            "control": f"python3 lab/labctl.py dns add|del|list|query (unbound-control -c {DNS_CFG})"}
