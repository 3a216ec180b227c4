"""The carriers: Kamailio (the SIP registrar, run from the machine's own package) and the files of
the IAX2 carrier (a second Asterisk host; it is started like a dialer, see hosts.py)."""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import time
from pathlib import Path

from .config import (CHROOT_ENV, KAM_CFG, KAM_CTL, KAM_DIR, KAM_LOG, KAM_PIDFILE, LabError, all_accounts,
                     render, template)
from .procs import (kill_pids, log_tail, pid_alive, proc_cmdline, proc_comm, processes_referencing, read_pid,
                    run, spawn_daemon)


# --------------------------------------------------------------------------------------------
# The IAX2 carrier's own Asterisk files
# --------------------------------------------------------------------------------------------

def iax_carrier_files(cfg: dict, ctx: dict) -> dict[str, tuple[str, int]]:
    """iax.conf (one friend per IAX2 account) and extensions.conf of carrier-iax."""
    ic = cfg["iax_carrier"]
    users = []
    for a in all_accounts(cfg):
        if a["carrier"] != "iax":
            continue
        users.append(f"[{a['username']}]\ntype=friend\nhost=dynamic\nsecret={a['password']}\n"
                     f"context={ic['context']}\nrequirecalltoken=no\ndisallow=all\n"
                     f"allow=ulaw\nallow=alaw\nallow=gsm\nqualify=no\n")
    ctx = dict(ctx, context=ic["context"], iax_port=ic["port"], iax_users="\n".join(users))
    return {f"etc/asterisk/{n}": (render(template(f"carrier-iax/{n}"), ctx, n), 0o640)
            for n in ("iax.conf", "extensions.conf")}


# --------------------------------------------------------------------------------------------
# Kamailio
# --------------------------------------------------------------------------------------------

def sip_listen_points(cfg: dict) -> list[tuple[str, int]]:
    """(address, port) Kamailio listens on, udp + tcp each: the main one first."""
    sc = cfg["sip_carrier"]
    points = [(sc["address"], int(sc["port"]))]
    if sc.get("srv_port"):
        points.append((sc.get("srv_address") or sc["address"], int(sc["srv_port"])))
    if sc.get("second_address"):
        points.append((sc["second_address"], int(sc["port"])))
    if sc.get("ipv6_port"):
        # IPv6 loopback, the lab's one IPv6 point: registration strings with an IPv6 host on the wire.
        points.append(("[::1]", int(sc["ipv6_port"])))
    return list(dict.fromkeys(points))


def kamailio_ports(cfg: dict) -> list[tuple[str, str, int]]:
    return [(proto, a, p) for a, p in sip_listen_points(cfg) for proto in ("udp", "tcp")]


def kamailio_bin() -> str:
    return shutil.which("kamailio") or "/usr/sbin/kamailio"


def kamailio_mpath() -> str:
    for cand in sorted(Path("/usr/lib").glob("*/kamailio/modules")) + [Path("/usr/lib/kamailio/modules")]:
        if (cand / "tm.so").exists():
            return str(cand) + "/"
    raise LabError("Kamailio modules not found (is the 'kamailio' package installed?)")


def kamailio_cfg_text(cfg: dict) -> str:
    sc = cfg["sip_carrier"]
    init = []
    for a in all_accounts(cfg):
        if a["carrier"] != "sip":
            continue
        init.append(f'\t$sht(acc=>{a["username"]}) = "{a["password"]}";')
        if a.get("authuser"):
            init.append(f'\t$sht(authid=>{a["username"]}) = "{a["authuser"]}";')
    for user in cfg["accounts"].get("forbidden") or []:
        init.append(f'\t$sht(forbid=>{user}) = 1;')
    domains = [str(d) for d in sc.get("domains") or [sc["address"]]]
    cond = " && ".join(f'$td != "{d}"' for d in domains)
    domain_check = (f"\tif ({cond}) {{\n"
                    f'\t\txlog("L_NOTICE", "REGISTER $tU@$td from $si:$sp: domain not served -> 403\\n");\n'
                    f'\t\t$var(code) = 403; $var(why) = "domain not served"; route(REGISTER_REPLY);\n'
                    f'\t\tsl_send_reply("403", "Domain Not Served");\n\t\texit;\n\t}}')
    listen_addrs = {a for a, _ in sip_listen_points(cfg)}
    aliases = "\n".join(f'alias="{d}"' for d in domains if d not in listen_addrs)
    listens = "\n".join(f"listen={proto}:{a}:{p}" for a, p in sip_listen_points(cfg) for proto in ("udp", "tcp"))
    ctx = {"address": sc["address"], "port": sc["port"], "realm": sc["realm"], "aliases": aliases,
           "listens": listens, "ctl_socket": str(KAM_CTL),
           "mpath": kamailio_mpath(), "min_expires": sc.get("min_expires", 10),
           "default_expires": sc.get("default_expires", 120), "max_expires": sc.get("max_expires", 3600),
           "htable_init": "\n".join(init), "domain_check": domain_check, "log_prefix": "carrier:"}
    return render(template("kamailio.cfg"), ctx, "kamailio.cfg")


def kamailio_pids() -> list[int]:
    """Every Kamailio process running our generated configuration (main + children)."""
    return [p for p in processes_referencing(str(KAM_CFG)) if proc_comm(p) == "kamailio"]


def kamailio_health(cfg_text: str) -> tuple[bool, str]:
    pid = read_pid(KAM_DIR / "main.pid")
    if not pid_alive(pid) or str(KAM_CFG) not in proc_cmdline(pid):
        return False, "not running"
    with contextlib.suppress(OSError):
        if KAM_CFG.read_text() != cfg_text:
            return False, "configuration changed"
    return True, "running"


def stop_kamailio(reap_wait: float = 0.5) -> None:
    pids = kamailio_pids()
    main = read_pid(KAM_DIR / "main.pid")
    if main and pid_alive(main) and str(KAM_CFG) in proc_cmdline(main):
        pids.insert(0, main)
    kill_pids(pids, "kamailio", reap_wait=reap_wait)
    for f in ("main.pid", "kamailio.pid"):
        (KAM_DIR / f).unlink(missing_ok=True)
    KAM_CTL.unlink(missing_ok=True)


def start_kamailio(cfg: dict, cfg_text: str) -> int:
    (KAM_DIR / "run").mkdir(parents=True, exist_ok=True)
    KAM_CFG.write_text(cfg_text)
    os.chmod(KAM_CFG, 0o640)
    cp = run([kamailio_bin(), "-c", "-f", str(KAM_CFG), "-Y", str(KAM_DIR / "run")], check=False, timeout=30)
    if cp.returncode != 0:
        errs = [ln for ln in (cp.stderr + cp.stdout).splitlines() if "ERROR" in ln or "CRITICAL" in ln]
        raise LabError(f"generated Kamailio configuration is invalid: {(errs or ['?'])[0].strip()[:200]}")
    KAM_CTL.unlink(missing_ok=True)
    return spawn_daemon([kamailio_bin(), "-f", str(KAM_CFG), "-P", str(KAM_PIDFILE), "-Y", str(KAM_DIR / "run"),
                         "-DD", "-E", "-m", "32", "-M", "4"], KAM_LOG, KAM_DIR / "main.pid", CHROOT_ENV)


def sip_options(addr: str, port: int, timeout: float = 1.0) -> str | None:
    """Send one OPTIONS over UDP; return the status line of the answer (None: no answer)."""
    v6 = addr.startswith("[")
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    me = "[::1]" if v6 else "127.0.0.1"
    try:
        s.bind((me.strip("[]"), 0))
        lport = s.getsockname()[1]
        tag, callid, branch = secrets.token_hex(4), secrets.token_hex(8), secrets.token_hex(6)
        msg = (f"OPTIONS sip:{addr}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {me}:{lport};branch=z9hG4bK{branch};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:labctl@{me}>;tag={tag}\r\n"
               f"To: <sip:{addr}:{port}>\r\nCall-ID: {callid}@labctl\r\nCSeq: 1 OPTIONS\r\n"
               f"Contact: <sip:labctl@{me}:{lport}>\r\nAccept: application/sdp\r\n"
               f"Content-Length: 0\r\n\r\n")
        s.settimeout(timeout)
        s.sendto(msg.encode(), (addr.strip("[]"), port))
        data, _ = s.recvfrom(65535)
        return data.decode(errors="replace").split("\r\n", 1)[0]
    except OSError:
        return None
    finally:
        s.close()


def wait_kamailio_ready(cfg: dict, deadline: float) -> dict:
    """Poll until every listen point answers an OPTIONS with 200 and the ctl socket exists."""
    pending = sip_listen_points(cfg)
    while True:
        pid = read_pid(KAM_DIR / "main.pid")
        if not pid_alive(pid):
            tail = [ln for ln in log_tail(KAM_LOG, 30).splitlines() if "ERROR" in ln]
            raise LabError(f"kamailio exited during start: {(tail or ['see ' + str(KAM_LOG)])[-1][:250]}")
        st = None
        while pending:
            st = sip_options(*pending[0], timeout=0.5)
            if not (st and " 200 " in st + " "):
                break
            pending.pop(0)
        if not pending and KAM_CTL.exists():
            return {"pid": pid}
        if time.monotonic() > deadline:
            where = f"{pending[0][0]}:{pending[0][1]}" if pending else f"its ctl socket {KAM_CTL}"
            raise LabError(f"kamailio does not answer OPTIONS on {where} (got {st!r}) [log: {KAM_LOG}]")
        time.sleep(0.2)
