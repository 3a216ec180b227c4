"""The lab's life: `up` (idempotent, recovers from a killed run), `down`, and `status`."""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import signal
import threading
import time

from . import dns
from .carriers import (kamailio_cfg_text, kamailio_health, kamailio_pids, kamailio_ports, sip_options,
                       start_kamailio, stop_kamailio, wait_kamailio_ready)
from .config import (CACHE_DIR, DNS_DIR, FACTS_FILE, HOSTS_DIR, INVENTORY_FILE, KAM_CFG, KAM_DIR, ROOTS_DIR,
                     STATE_DIR, STATE_FILE, T0, Host, LabError, carrier_host, dialer_hosts, log)
from .hosts import (asterisk_rx, create_host, host_fingerprint, host_files, host_health, host_ports,
                    known_host_dirs, teardown_host, wait_host_ready)
from .machine import ensure_host_packages, ensure_ssh_key, lab_lock, require_root
from .procs import (atomic_write, check_ports, kill_pids, mounts_under, pid_alive, proc_cmdline, proc_root,
                    processes_rooted_under, read_pid, umount_all, under)
from .roots import build_roots, cleanup_stale_builds, point_resolver, recipe_hash, root_stamp, root_valid
from .state import build_facts, load_state, write_inventory, write_state


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def cmd_up(cfg: dict, n: int) -> int:
    require_root()
    max_hosts = int(cfg["lab"]["max_hosts"])
    if not 1 <= n <= max_hosts:
        raise LabError(f"--hosts must be between 1 and {max_hosts} (got {n})")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    with lab_lock():
        ensure_host_packages(cfg)
        for p in (HOSTS_DIR, KAM_DIR, DNS_DIR, ROOTS_DIR):
            p.mkdir(parents=True, exist_ok=True)
        pubkey = ensure_ssh_key()
        carrier = carrier_host(cfg)
        dialers = dialer_hosts(cfg, n)
        wanted = [carrier] + dialers
        wanted_names = {h.name for h in wanted}

        # 1. recover from whatever a previous (killed) run left behind
        cleanup_stale_builds()
        for h in known_host_dirs(cfg):
            if h.name not in wanted_names:
                log(f"removing {h.name} (not part of a {n}-dialer lab)")
                teardown_host(h, remove=True)
        wanted_dirs = [str(h.dir) for h in wanted]
        strays = [p for p in processes_rooted_under([str(HOSTS_DIR)])
                  if not under(proc_root(p) or "", wanted_dirs)]
        kill_pids(strays, "stray lab processes")
        umount_all([m.target for m in mounts_under([str(STATE_DIR)])
                    if not under(m.target, wanted_dirs)], "stray lab mounts")

        # 2. cached roots (their own resolv.conf names the lab DNS, for whoever else overlays them)
        stale_roots = [r for r in sorted({h.flavor for h in wanted}) if not root_valid(cfg, r)]
        if stale_roots:
            for h in known_host_dirs(cfg):
                if h.flavor in stale_roots:
                    teardown_host(h)
            build_roots(cfg, stale_roots)
        for r in cfg["roots"]:
            if root_valid(cfg, r):
                point_resolver(cfg, r)
        root_hash = {r: recipe_hash(cfg, r) for r in {h.flavor for h in wanted}}

        # 3. what is already running as wanted, what must (re)start
        plans = {}
        to_start: list[Host] = []
        for h in wanted:
            files = host_files(cfg, h, pubkey)
            fp = host_fingerprint(files, root_hash[h.flavor])
            ok, why = host_health(cfg, h, fp)
            plans[h.name] = (files, fp)
            if ok:
                log(f"{h.name}: already running")
            else:
                if why not in ("absent", "stopped"):
                    log(f"{h.name}: {why} - restarting it")
                to_start.append(h)
        kam_text = kamailio_cfg_text(cfg)
        kam_ok, kam_why = kamailio_health(kam_text)
        if kam_ok:
            log("kamailio: already running")
        dns_ok, dns_why = dns.dns_health(cfg)
        if dns_ok:
            log("dns (unbound): already running")
        for h in to_start:
            teardown_host(h)
        if not kam_ok:
            if kam_why != "not running" or kamailio_pids():
                log(f"kamailio: {kam_why} - restarting it")
            stop_kamailio()
        if not dns_ok:
            if dns_why != "not running" or dns.dns_pids():
                log(f"dns (unbound): {dns_why} - restarting it")
            dns.stop_dns()

        # 4. preconditions: every address:port we are about to bind must be free
        ports = []
        if not dns_ok:
            dc = cfg["dns"]
            ports += [(p, dc["address"], int(dc["port"]), "the lab DNS (unbound)") for p in ("udp", "tcp")]
        if not kam_ok:
            ports += [(p, a, port, "the SIP carrier (kamailio)") for p, a, port in kamailio_ports(cfg)]
        for h in to_start:
            ports += [(p, a, port, h.name) for p, a, port in host_ports(cfg, h)]
        check_ports(ports)

        # 5. start, wait, and on any failure tear down what this run started. The DNS first: the
        #    hosts' resolv.conf points at it and Asterisk reads its nameservers when it starts.
        started_hosts: list[Host] = []
        started_kam = started_dns = False
        lock = threading.Lock()
        try:
            deadline = time.monotonic() + float(cfg["lab"].get("ready_timeout", 120))
            if not dns_ok:
                dns.start_dns(cfg)
                started_dns = True
                dns.wait_dns_ready(cfg, deadline)
            if not kam_ok:
                start_kamailio(cfg, kam_text)
                started_kam = True

            def start_one(h: Host) -> None:
                with lock:
                    started_hosts.append(h)
                create_host(cfg, h, *plans[h.name])

            if to_start:
                log(f"starting {', '.join(h.name for h in to_start)}")
                with cf.ThreadPoolExecutor(max_workers=min(8, len(to_start))) as ex:
                    for fut in [ex.submit(start_one, h) for h in to_start]:
                        fut.result()
            host_facts: dict[str, dict] = {}
            errors = []
            with cf.ThreadPoolExecutor(max_workers=min(16, len(wanted) + 1)) as ex:
                futs = {ex.submit(wait_host_ready, cfg, h, deadline): h.name for h in wanted}
                kfut = ex.submit(wait_kamailio_ready, cfg, deadline)
                for fut, name in list(futs.items()) + [(kfut, "kamailio")]:
                    try:
                        res = fut.result()
                        if name != "kamailio":
                            host_facts[name] = res
                    except LabError as exc:
                        errors.append(str(exc))
            if errors:
                raise LabError(errors[0] + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""))
        except BaseException as exc:
            log(f"up failed ({exc.__class__.__name__}) - tearing down what this run started")
            for h in reversed(started_hosts):
                with contextlib.suppress(Exception):
                    teardown_host(h)
            if started_kam:
                with contextlib.suppress(Exception):
                    stop_kamailio()
            if started_dns:
                with contextlib.suppress(Exception):
                    dns.stop_dns()
            with contextlib.suppress(Exception):
                write_state(cfg, "failed", n, [h for h in wanted if h not in started_hosts])
            raise

        write_state(cfg, "up", n, wanted)
        write_inventory(cfg, dialers)
        atomic_write(FACTS_FILE, json.dumps(build_facts(cfg, dialers, carrier, host_facts, True), indent=2) + "\n",
                     mode=0o600)
    sc = cfg["sip_carrier"]
    changed = bool(to_start) or not kam_ok or not dns_ok
    head = "lab up" if changed else "lab already running (nothing changed)"
    print(f"{head} in {time.monotonic() - T0:.1f}s: dns {cfg['dns']['address']}:{cfg['dns']['port']}, "
          f"kamailio {sc['address']}:{sc['port']}, "
          f"{carrier.name} {carrier.address}:{cfg['iax_carrier']['port']}, dialers: "
          + ", ".join(f"{h.name}={h.address} (Asterisk {host_facts.get(h.name, {}).get('asterisk_version')})"
                      for h in dialers))
    print(f"inventory: {INVENTORY_FILE}   facts: {FACTS_FILE}")
    return 0


def cmd_down(cfg: dict) -> int:
    require_root()
    signal.signal(signal.SIGTERM, on_signal)
    with lab_lock():
        before_mounts = len(mounts_under([str(STATE_DIR), str(CACHE_DIR)]))
        pids = processes_rooted_under([str(STATE_DIR), str(CACHE_DIR)])
        kill_pids(pids, "lab hosts", reap_wait=5.0)
        # Kamailio and unbound together: the wait for their reaping (by init) is then paid once
        kill_pids(kamailio_pids() + dns.dns_pids(), "kamailio and unbound", reap_wait=5.0)
        stop_kamailio(reap_wait=5.0)
        dns.stop_dns(reap_wait=5.0, reset_records=True)
        umount_all([str(STATE_DIR), str(CACHE_DIR)], "lab mounts")
        cleanup_stale_builds()
        for h in known_host_dirs(cfg):
            for d in ("asterisk", "sshd"):
                (h.dir / f"{d}.pid").unlink(missing_ok=True)
        left_p = processes_rooted_under([str(STATE_DIR), str(CACHE_DIR)]) + kamailio_pids() + dns.dns_pids()
        left_m = mounts_under([str(STATE_DIR), str(CACHE_DIR)])
        if left_p or left_m:
            raise LabError(f"down incomplete: processes {left_p}, mounts {[m.target for m in left_m]}")
        st = load_state()
        st.update({"status": "down", "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        for h in st.get("hosts", []):
            h["mounts"], h["pids"] = [], {}
        for daemon in ("kamailio", "dns"):
            if daemon in st:
                st[daemon]["pid"] = None
        atomic_write(STATE_FILE, json.dumps(st, indent=2) + "\n")
        with contextlib.suppress(OSError, ValueError):
            facts = json.loads(FACTS_FILE.read_text())
            facts["running"] = False
            atomic_write(FACTS_FILE, json.dumps(facts, indent=2) + "\n", mode=0o600)
    print(f"lab down: stopped {len(pids)} host process(es), kamailio and the DNS, unmounted {before_mounts} mount(s)"
          if pids or before_mounts else "lab down: nothing was running")
    return 0


def lab_process_pids() -> list[int]:
    """Every process the lab runs (hosts' processes + kamailio + unbound) - used by status and benchmarks."""
    return sorted(set(processes_rooted_under([str(HOSTS_DIR)]) + kamailio_pids() + dns.dns_pids()))


def collect_status(cfg: dict) -> dict:
    st = load_state()
    out = {"state_file": st.get("status", "none"), "hosts_requested": st.get("hosts_requested"),
           "roots": {}, "components": []}
    for r in cfg["roots"]:
        stamp = root_stamp(r)
        out["roots"][r] = {"path": str(ROOTS_DIR / r), "cached": bool(stamp),
                           "current": root_valid(cfg, r) if stamp else False,
                           "asterisk": (stamp or {}).get("asterisk_version")}
    dc = cfg["dns"]
    dpid = read_pid(dns.DNS_PID)
    dalive = pid_alive(dpid) and str(dns.DNS_CFG) in proc_cmdline(dpid)
    dok, ddetail = dns.probe(cfg) if dalive else (False, "-")
    out["components"].append({"name": "dns", "role": "dns (unbound)", "address": f"{dc['address']}:{dc['port']}",
                              "pid": dpid if dalive else None, "running": bool(dalive and dok),
                              "detail": ddetail})
    sc = cfg["sip_carrier"]
    kpid = read_pid(KAM_DIR / "main.pid")
    kalive = pid_alive(kpid) and str(KAM_CFG) in proc_cmdline(kpid)
    ans = sip_options(sc["address"], int(sc["port"]), timeout=0.5) if kalive else None
    out["components"].append({"name": "kamailio", "role": "sip-carrier", "address": f"{sc['address']}:{sc['port']}",
                              "pid": kpid if kalive else None, "running": bool(kalive and ans and " 200 " in ans + " "),
                              "detail": ans or "-"})
    names = [h.get("name") for h in st.get("hosts", [])]
    hosts = {h.name: h for h in known_host_dirs(cfg)}
    for name in sorted(set(names) | set(hosts), key=lambda x: (x != cfg["iax_carrier"]["name"], x)):
        h = hosts.get(name)
        if h is None or h.role == "unknown":
            continue
        pids = {d: read_pid(h.dir / f"{d}.pid") for d in h.daemons}
        alive = {d: pid_alive(p) and proc_root(p) == str(h.merged) for d, p in pids.items()}
        ver = "-"
        if alive.get("asterisk"):
            cp = asterisk_rx(h, "core show version", timeout=5)
            ver = cp.stdout.split()[1] if cp.returncode == 0 and len(cp.stdout.split()) > 1 else "no answer"
        out["components"].append({
            "name": h.name, "role": "iax-carrier" if h.role == "carrier" else f"dialer (Asterisk {h.major})",
            "address": h.address, "pid": pids.get("asterisk") if alive.get("asterisk") else None,
            "running": all(alive.values()) and ver not in ("-", "no answer"),
            "detail": f"asterisk {ver}" + ("" if h.role == "carrier" else f", sshd {'up' if alive.get('sshd') else 'down'}")})
    out["mounts"] = len(mounts_under([str(STATE_DIR), str(CACHE_DIR)]))
    out["processes"] = len(lab_process_pids()) if os.geteuid() == 0 else None
    running = [c["running"] for c in out["components"]]
    out["status"] = "up" if running and all(running) and st.get("status") == "up" else \
        ("down" if not any(running) else "degraded")
    return out
