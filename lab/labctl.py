#!/usr/bin/env python3
"""labctl.py - the vicireg loopback test lab: build, start, stop, inspect.

    python3 lab/labctl.py up [--hosts N]    build (cached) roots if needed, start the SIP carrier
                                            (Kamailio), the IAX2 carrier and N dialers; idempotent
    python3 lab/labctl.py down              stop everything the lab started, unmount everything
    python3 lab/labctl.py status [--json]   what runs (exit 0 up, 1 degraded, 3 down)
    python3 lab/labctl.py build [--force]   only (re)build the cached Debian roots
    python3 lab/labctl.py accounts          carrier accounts and their (lab-only) passwords
    python3 lab/labctl.py ssh HOST [CMD..]  ssh into a dialer with the lab key

Standard library only: it runs as root with the system python3 before any venv exists.
Layout (fixed, other code depends on it):
    /var/cache/vicireg-lab/roots/{a16,a22}   cached Debian roots (stamped with their recipe hash)
    /var/lib/vicireg-lab/                    runtime: hosts/<name>/{upper,work,merged,log},
                                             kamailio/, ssh/id_ed25519, state.json, lab-facts.json
    inventories/lab/hosts.yml                generated Ansible inventory (gitignored)
See lab/README.md.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import errno
import fcntl
import hashlib
import inspect
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
REPO_DIR = LAB_DIR.parent
CONFIG_FILE = Path(os.environ.get("VICIREG_LAB_CONFIG") or LAB_DIR / "lab.yml")
TEMPLATE_DIR = LAB_DIR / "templates"
INVENTORY_FILE = REPO_DIR / "inventories" / "lab" / "hosts.yml"

STATE_DIR = Path("/var/lib/vicireg-lab")
CACHE_DIR = Path("/var/cache/vicireg-lab")
ROOTS_DIR = CACHE_DIR / "roots"
BUILD_LOG_DIR = CACHE_DIR / "logs"
HOSTS_DIR = STATE_DIR / "hosts"
KAM_DIR = STATE_DIR / "kamailio"
KAM_CFG = KAM_DIR / "kamailio.cfg"
KAM_PIDFILE = KAM_DIR / "kamailio.pid"
SSH_DIR = STATE_DIR / "ssh"
SSH_KEY = SSH_DIR / "id_ed25519"
STATE_FILE = STATE_DIR / "state.json"
FACTS_FILE = STATE_DIR / "lab-facts.json"
LOCK_FILE = STATE_DIR / "labctl.lock"

STAMP_NAME = ".vicireg-lab-recipe.json"
# A carrier host name longer than `sip show registry`'s 39-character host:port column.
LONG_CARRIER_NAME = "registrar-with-a-long-name.lab.carrier"
BUILD_MARK = ".build-"
OLD_MARK = ".old-"
# Bump when the way roots are built changes in a way the recipe text does not show.
BUILDER_VERSION = 1
# Bump when the way hosts are assembled changes (forces a restart of running hosts).
HOST_LAYOUT_VERSION = 1

CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
}
NETWORK_ERROR_RE = re.compile(
    r"Failed getting release file|Couldn't download|Temporary failure resolving|"
    r"Could not resolve|Connection refused|Connection timed out|Network is unreachable|"
    r"No route to host|unable to resolve|Unable to connect|Failed to fetch|"
    r"Cannot initiate the connection|Could not connect|Connection failed|"
    r"Release file .* is not valid yet|Name or service not known", re.I)

T0 = time.monotonic()
SPAWNED: dict[int, subprocess.Popen] = {}   # daemons started by this run (pid -> Popen)
_BUILD_PROCS: set[subprocess.Popen] = set()
_BUILD_LOCK = threading.Lock()


class LabError(Exception):
    """A failure with a one-line explanation for the operator."""


def log(msg: str) -> None:
    print(f"[lab {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# A small YAML subset (lab.yml must stay readable without PyYAML)
# --------------------------------------------------------------------------------------------

_KEY_RE = re.compile(r"^([A-Za-z0-9_.-]+)\s*:(?:\s+(.*))?$")


def _strip_comment(line: str) -> str:
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _split_flow(text: str) -> list[str]:
    parts, cur, quote = [], [], None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _flow_depth(text: str) -> int:
    depth, quote = 0, None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
    return max(depth, 0)


def _scalar(tok: str, where: str):
    tok = tok.strip()
    if tok == "" or tok in ("~", "null"):
        return None
    if tok[0] == "[":
        if not tok.endswith("]"):
            raise LabError(f"{where}: unterminated flow list")
        inner = tok[1:-1].strip()
        return [] if not inner else [_scalar(p, where) for p in _split_flow(inner)]
    if tok == "{}":
        return {}
    if tok[0] in "\"'":
        if len(tok) < 2 or tok[-1] != tok[0]:
            raise LabError(f"{where}: unterminated quoted string")
        body = tok[1:-1]
        if tok[0] == '"':
            body = body.replace('\\"', '"').replace("\\\\", "\\")
        else:
            body = body.replace("''", "'")
        return body
    if tok in ("true", "True"):
        return True
    if tok in ("false", "False"):
        return False
    if re.fullmatch(r"-?\d+", tok):
        return int(tok)
    if re.fullmatch(r"-?\d+\.\d+", tok):
        return float(tok)
    return tok


def parse_yaml(text: str, source: str = "lab.yml"):
    """Parse the YAML subset lab.yml uses: block mappings and lists (also lists of mappings),
    flow lists, quoted and plain scalars, comments. Raises LabError with the line number."""
    items: list[list] = []
    open_flow = 0   # a flow list may continue over several lines
    for n, raw in enumerate(text.splitlines(), 1):
        lead = raw[: len(raw) - len(raw.lstrip())]
        if "\t" in lead and raw.strip():
            raise LabError(f"{source}:{n}: tab in indentation")
        line = _strip_comment(raw)
        if not line.strip() or (not items and line.strip() == "---"):
            continue
        if open_flow:
            items[-1][1] += " " + line.strip()
        else:
            items.append([len(line) - len(line.lstrip(" ")), line.strip(), n])
        open_flow = _flow_depth(items[-1][1])
    if open_flow:
        raise LabError(f"{source}: unterminated flow list at end of file")
    pos = 0

    def is_item(s: str) -> bool:
        return s == "-" or s.startswith("- ")

    def block(ind: int):
        nonlocal pos
        if is_item(items[pos][1]):
            out = []
            while pos < len(items) and items[pos][0] == ind and is_item(items[pos][1]):
                content, ln = items[pos][1], items[pos][2]
                rest = content[1:].strip()
                if rest == "":
                    pos += 1
                    out.append(block(items[pos][0]) if pos < len(items) and items[pos][0] > ind else None)
                elif _KEY_RE.match(rest):
                    items[pos] = [ind + len(content) - len(rest), rest, ln]
                    out.append(block(items[pos][0]))
                else:
                    pos += 1
                    out.append(_scalar(rest, f"{source}:{ln}"))
            return out
        out: dict = {}
        while pos < len(items) and items[pos][0] == ind:
            content, ln = items[pos][1], items[pos][2]
            m = _KEY_RE.match(content)
            if not m:
                raise LabError(f"{source}:{ln}: expected 'key: value', got {content!r}")
            key, rest = m.group(1), (m.group(2) or "")
            if key in out:
                raise LabError(f"{source}:{ln}: duplicate key {key!r}")
            pos += 1
            if rest.strip() == "":
                if pos < len(items) and items[pos][0] > ind:
                    out[key] = block(items[pos][0])
                elif pos < len(items) and items[pos][0] == ind and is_item(items[pos][1]):
                    out[key] = block(ind)
                else:
                    out[key] = None
            else:
                out[key] = _scalar(rest, f"{source}:{ln}")
        return out

    if not items:
        return {}
    result = block(items[0][0])
    if pos != len(items):
        raise LabError(f"{source}:{items[pos][2]}: unexpected indentation")
    return result


# --------------------------------------------------------------------------------------------
# Configuration, hosts, accounts
# --------------------------------------------------------------------------------------------

def load_config(path: Path = CONFIG_FILE) -> dict:
    try:
        cfg = parse_yaml(path.read_text(), str(path))
    except OSError as exc:
        raise LabError(f"cannot read {path}: {exc}") from exc
    for section in ("lab", "roots", "sip_carrier", "iax_carrier", "dialer", "ami", "accounts",
                    "asterisk_modules"):
        if not isinstance(cfg.get(section), dict):
            raise LabError(f"{path}: section '{section}' missing or not a mapping")
    for addr in (cfg["sip_carrier"]["address"], cfg["iax_carrier"]["address"]):
        _check_address(addr)
    return cfg


def _check_address(addr: str) -> None:
    parts = addr.split(".")
    if len(parts) != 4 or parts[0] != "127" or not all(p.isdigit() for p in parts):
        raise LabError(f"lab address {addr} is not in 127.0.0.0/8")
    if parts[1] == "0" and parts[2] == "0" and 200 <= int(parts[3]) <= 254:
        raise LabError(f"lab address {addr} is inside 127.0.0.200-127.0.0.254, reserved for outside test peers")


@dataclass(frozen=True)
class Host:
    name: str
    role: str        # "dialer" | "carrier"
    flavor: str      # cached root: a16 | a22
    major: int       # Asterisk major version
    index: int       # dialer index (0 for the carrier)
    address: str

    @property
    def dir(self) -> Path:
        return HOSTS_DIR / self.name

    @property
    def merged(self) -> Path:
        return self.dir / "merged"

    @property
    def logdir(self) -> Path:
        return self.dir / "log"

    @property
    def daemons(self) -> tuple[str, ...]:
        return ("asterisk", "sshd") if self.role == "dialer" else ("asterisk",)


def dialer_flavor(i: int) -> str:
    return "a16" if i % 2 == 1 else "a22"


def dialer_hosts(cfg: dict, n: int) -> list[Host]:
    base = int(cfg["lab"]["dialer_address_base"])
    out = []
    for i in range(1, n + 1):
        flavor = dialer_flavor(i)
        addr = f"127.0.0.{base + i}"
        _check_address(addr)
        out.append(Host(f"lab-{flavor}-{i:02d}", "dialer", flavor,
                        int(cfg["roots"][flavor]["asterisk_major"]), i, addr))
    return out


def carrier_host(cfg: dict) -> Host:
    ic = cfg["iax_carrier"]
    return Host(ic["name"], "carrier", ic["root"], int(cfg["roots"][ic["root"]]["asterisk_major"]),
                0, ic["address"])


def derive_password(seed: str, username: str) -> str:
    """Lab-only deterministic password: 'lab' + first 16 hex digits of sha256('<seed>:<user>')."""
    return "lab" + hashlib.sha256(f"{seed}:{username}".encode()).hexdigest()[:16]


def all_accounts(cfg: dict) -> list[dict]:
    """Every carrier account for dialer indices 1..max_hosts (independent of how many dialers
    run, so the carriers' configuration does not change with N)."""
    acc = cfg["accounts"]
    seed = str(acc["seed"])
    max_hosts = int(cfg["lab"]["max_hosts"])
    out = []
    for i in range(1, max_hosts + 1):
        major = int(cfg["roots"][dialer_flavor(i)]["asterisk_major"])
        for tmpl in acc.get("per_dialer") or []:
            versions = [int(v) for v in (tmpl.get("versions") or [major])]
            if major not in versions:
                continue
            user = str(tmpl["username"]).replace("{i}", str(i))
            entry = {"index": i, "kind": tmpl["kind"], "username": user,
                     "password": derive_password(seed, user), "carrier": tmpl.get("carrier", "sip")}
            if tmpl.get("authuser"):
                entry["authuser"] = str(tmpl["authuser"]).replace("{i}", str(i))
            out.append(entry)
    names = [a["username"] for a in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise LabError(f"lab.yml: account usernames collide: {sorted(dup)}")
    return out


def render(text: str, ctx: dict, source: str) -> str:
    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in ctx:
            raise LabError(f"template {source}: variable '{key}' is not defined")
        return str(ctx[key])
    return re.sub(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}", sub, text)


def _template(rel: str) -> str:
    return (TEMPLATE_DIR / rel).read_text()


def module_loads(cfg: dict, host: Host) -> str:
    mods = cfg["asterisk_modules"]
    names = list(mods["common"])
    if host.role == "dialer":
        names += list(mods["dialer"])
        if host.major < 21:
            names += list(mods["chan_sip"])
    return "\n".join(f"load => {m}.so" for m in names)


def host_files(cfg: dict, host: Host, pubkey: str) -> dict[str, tuple[str | None, int]]:
    """Files written into the host's overlay: relative path -> (content, mode); None deletes."""
    d = cfg["dialer"]
    seed = str(cfg["accounts"]["seed"])
    ctx = {
        "name": host.name, "address": host.address, "index": host.index,
        "index2": f"{host.index:02d}", "ami_port": d["ami_port"],
        "ami_user": cfg["ami"]["username"], "ami_secret": cfg["ami"]["secret"],
        "rtp_start": int(d["rtp_base"]) + 100 * host.index,
        "rtp_end": int(d["rtp_base"]) + 100 * host.index + 98,
        "module_loads": module_loads(cfg, host), "iax_port": d["iax_port"],
    }
    files: dict[str, tuple[str, int]] = {}
    common = ["modules.conf", "logger.conf", "rtp.conf", "manager.conf", "http.conf"]
    if host.role == "dialer":
        ctx.update({
            "sip_port": d["sip_port"],
            "pjsip_port": d["pjsip_port_a16"] if host.major < 21 else d["sip_port"],
            "ssh_port": d["ssh_port"],
            "astloop_secret": derive_password(seed, f"ASTloop@{host.name}"),
            "phone_secret": derive_password(seed, f"labphone{host.index:02d}"),
        })
        names = ["iax.conf", "iax-vicidial.conf", "pjsip.conf", "pjsip-vicidial.conf",
                 "extensions.conf", "extensions-vicidial.conf"]
        if host.major < 21:
            names += ["sip.conf", "sip-vicidial.conf"]
        for n in common:
            files[f"etc/asterisk/{n}"] = (render(_template(f"common/{n}"), ctx, n), 0o640)
        for n in names:
            files[f"etc/asterisk/{n}"] = (render(_template(f"dialer/{n}"), ctx, n), 0o640)
        files["etc/ssh/sshd_config"] = (render(_template("dialer/sshd_config"), ctx, "sshd_config"), 0o644)
        files["root/.ssh/authorized_keys"] = (pubkey, 0o600)
    else:
        ic = cfg["iax_carrier"]
        users = []
        for a in all_accounts(cfg):
            if a["carrier"] != "iax":
                continue
            users.append(f"[{a['username']}]\ntype=friend\nhost=dynamic\nsecret={a['password']}\n"
                         f"context={ic['context']}\nrequirecalltoken=no\ndisallow=all\n"
                         f"allow=ulaw\nallow=alaw\nallow=gsm\nqualify=no\n")
        ctx.update({"context": ic["context"], "iax_port": ic["port"], "iax_users": "\n".join(users)})
        for n in common:
            files[f"etc/asterisk/{n}"] = (render(_template(f"common/{n}"), ctx, n), 0o640)
        for n in ("iax.conf", "extensions.conf"):
            files[f"etc/asterisk/{n}"] = (render(_template(f"carrier-iax/{n}"), ctx, n), 0o640)
    # The package's sample users.conf would add users to chan_iax2/pbx_config (and Asterisk 22
    # warns that it is deprecated): the lab hosts have none.
    files["etc/asterisk/users.conf"] = (None, 0)
    files["etc/hostname"] = (host.name + "\n", 0o644)
    # The carriers by name too (most real carriers are given by name): a short one, and one longer
    # than the 39 characters `sip show registry` prints for host:port.
    sip, iax = cfg["sip_carrier"]["address"], cfg["iax_carrier"]["address"]
    names = (f"{sip}\tlab.carrier\n{sip}\t{LONG_CARRIER_NAME}\n{iax}\tiax.lab.carrier\n")
    files["etc/hosts"] = (f"127.0.0.1\tlocalhost\n{host.address}\t{host.name}\n{names}", 0o644)
    return files


def host_fingerprint(files: dict, root_hash: str) -> str:
    h = hashlib.sha256(f"layout={HOST_LAYOUT_VERSION};root={root_hash}\n".encode())
    for path in sorted(files):
        content, mode = files[path]
        h.update(f"{path}\0{mode}\0".encode() + (content or "\0deleted").encode() + b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Processes and mounts
# --------------------------------------------------------------------------------------------

def run(cmd: list[str], *, check: bool = True, timeout: float | None = None, env: dict | None = None,
        input: str | None = None) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                            input=input, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"command timed out after {timeout}s: {shlex.join(cmd)}") from exc
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {cmd[0]}") from exc
    if check and cp.returncode != 0:
        msg = (cp.stderr or cp.stdout).strip().splitlines()
        raise LabError(f"{shlex.join(cmd)} failed (rc {cp.returncode}): {msg[-1] if msg else ''}")
    return cp


def list_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def proc_root(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return None


def proc_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def proc_comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    p = SPAWNED.get(pid)
    if p is not None and p.poll() is not None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _under(path: str, prefixes: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _ancestors() -> set[int]:
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def processes_rooted_under(prefixes: list[str]) -> list[int]:
    mine = _ancestors()
    out = []
    for pid in list_pids():
        if pid in mine:
            continue
        root = proc_root(pid)
        if root and root != "/" and _under(root, prefixes) and pid_alive(pid):
            out.append(pid)
    return out


def processes_referencing(substr: str, with_cwd: bool = False) -> list[int]:
    """Processes whose command line (or, optionally, cwd) mentions substr."""
    mine = _ancestors()
    out = []
    for pid in list_pids():
        if pid in mine or not pid_alive(pid):
            continue
        hit = substr in proc_cmdline(pid)
        if not hit and with_cwd:
            try:
                hit = _under(os.readlink(f"/proc/{pid}/cwd"), [substr])
            except OSError:
                pass
        if hit:
            out.append(pid)
    return out


def kill_pids(pids: list[int], what: str, grace: float = 6.0, reap_wait: float = 0.5) -> None:
    pids = [p for p in dict.fromkeys(pids) if pid_alive(p)]
    if not pids:
        return
    log(f"stopping {what}: {len(pids)} process(es)")
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        live = [p for p in pids if pid_alive(p)]
        if not live:
            # give the parent (often init) a moment to reap them, so no <defunct> entry lingers
            end = time.monotonic() + reap_wait
            while time.monotonic() < end and any(os.path.exists(f"/proc/{p}") for p in pids):
                for p in pids:
                    if p in SPAWNED:
                        SPAWNED[p].poll()
                time.sleep(0.05)
            return
        time.sleep(0.1)
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    left = [p for p in pids if pid_alive(p)]
    if left:
        raise LabError(f"could not stop {what}: pids {left} survive SIGKILL")


@dataclass
class Mount:
    source: str
    target: str
    fstype: str
    options: str


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def read_mounts() -> list[Mount]:
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4:
                out.append(Mount(_unescape(parts[0]), _unescape(parts[1]), parts[2], parts[3]))
    return out


def mounts_under(prefixes: list[str]) -> list[Mount]:
    return [m for m in read_mounts() if _under(m.target, prefixes)]


def umount_all(prefixes: list[str], what: str) -> None:
    """Unmount every mount below prefixes, newest first; kill processes that keep one busy."""
    for attempt in range(4):
        ms = mounts_under(prefixes)
        if not ms:
            return
        if attempt == 0:
            log(f"unmounting {what}: {len(ms)} mount(s)")
        busy = False
        for m in reversed(ms):
            cp = run(["umount", m.target], check=False)
            if cp.returncode != 0 and os.path.ismount(m.target):
                busy = True
        if busy:
            kill_pids(processes_rooted_under(prefixes), f"processes keeping {what} busy")
    ms = mounts_under(prefixes)
    for m in reversed(ms):
        log(f"warning: lazily unmounting busy {m.target}")
        run(["umount", "-l", m.target], check=False)
    if mounts_under(prefixes):
        raise LabError(f"could not unmount {what}: {[m.target for m in mounts_under(prefixes)]}")


def safe_rmtree(path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        return
    if mounts_under([str(path)]):
        raise LabError(f"refusing to delete {path}: something is still mounted below it")
    shutil.rmtree(path)


def mount_proc_dev(root: Path) -> None:
    """/proc and a minimal /dev (tmpfs with the usual nodes + a private devpts) in a root."""
    (root / "proc").mkdir(exist_ok=True)
    (root / "dev").mkdir(exist_ok=True)
    run(["mount", "-t", "proc", "-o", "nosuid,nodev,noexec", "proc", str(root / "proc")])
    dev = root / "dev"
    run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1m,nosuid,noexec", "labdev", str(dev)])
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                               ("urandom", 1, 9), ("tty", 5, 0)):
        os.mknod(dev / name, 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod(dev / name, 0o666)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                         ("ptmx", "pts/ptmx")):
        os.symlink(target, dev / name)
    (dev / "pts").mkdir()
    (dev / "shm").mkdir(mode=0o1777)
    os.chmod(dev / "shm", 0o1777)
    run(["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620,gid=5", "devpts",
         str(dev / "pts")])


# --------------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------------

def port_free(proto: str, addr: str, port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        if proto == "tcp":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        return True
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        if exc.errno == errno.EADDRNOTAVAIL:
            raise LabError(f"address {addr} is not usable on this machine (loopback 127.0.0.0/8 missing?)")
        raise
    finally:
        s.close()


def port_owner(proto: str, addr: str, port: int) -> str:
    """'pid N (comm)' of whoever holds addr:port, best effort."""
    want_ips = {addr, "0.0.0.0"}
    inodes = set()
    with contextlib.suppress(OSError):
        with open(f"/proc/net/{proto}") as f:
            next(f)
            for line in f:
                cols = line.split()
                ip_hex, port_hex = cols[1].split(":")
                ip = socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1])
                if int(port_hex, 16) == port and ip in want_ips and (proto == "udp" or cols[3] == "0A"):
                    inodes.add(cols[9])
    if not inodes:
        return "an unknown process"
    for pid in list_pids():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return f"pid {pid} ({proc_comm(pid)})"
    return "an unknown process"


def host_ports(cfg: dict, host: Host) -> list[tuple[str, str, int]]:
    d = cfg["dialer"]
    if host.role == "carrier":
        return [("udp", host.address, int(cfg["iax_carrier"]["port"])),
                ("tcp", host.address, int(d["ami_port"]))]
    pj = int(d["pjsip_port_a16"] if host.major < 21 else d["sip_port"])
    ports = [("tcp", host.address, int(d["ssh_port"])), ("udp", host.address, int(d["iax_port"])),
             ("tcp", host.address, int(d["ami_port"])), ("udp", host.address, pj), ("tcp", host.address, pj)]
    if host.major < 21:
        ports += [("udp", host.address, int(d["sip_port"])), ("tcp", host.address, int(d["sip_port"]))]
    return ports


def check_ports(ports: list[tuple[str, str, int, str]]) -> None:
    for proto, addr, port, who in ports:
        if not port_free(proto, addr, port):
            raise LabError(f"{addr}:{port}/{proto} (needed by {who}) is already in use by "
                           f"{port_owner(proto, addr, port)} that is not part of the lab")


# --------------------------------------------------------------------------------------------
# Host machine preparation
# --------------------------------------------------------------------------------------------

def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (mounts, chroots, debootstrap): run it as root, e.g. with sudo")


def dpkg_installed(pkg: str) -> bool:
    cp = run(["dpkg-query", "-W", "-f=${Status}", pkg], check=False)
    return cp.returncode == 0 and cp.stdout.strip().endswith("install ok installed")


def ensure_host_packages(cfg: dict) -> None:
    if not shutil.which("dpkg-query") or not shutil.which("apt-get"):
        raise LabError("this machine has no dpkg/apt: the lab needs Debian 12")
    missing = [p for p in cfg.get("host_packages") or [] if not dpkg_installed(p)]
    if not missing:
        return
    log(f"installing host packages: {' '.join(missing)}")
    guard = Path("/usr/sbin/policy-rc.d")
    guarded = False
    if not guard.exists():   # no service (the distro Kamailio!) may start during the install
        guard.write_text("#!/bin/sh\n# vicireg lab: no service starts during apt-get install\nexit 101\n")
        guard.chmod(0o755)
        guarded = True
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        cp = run(["apt-get", "update", "-q"], check=False, env=env, timeout=600)
        if cp.returncode != 0 or NETWORK_ERROR_RE.search(cp.stdout + cp.stderr):
            lines = [ln for ln in (cp.stderr + cp.stdout).splitlines() if ln.strip()]
            raise LabError("package registry unreachable: apt-get update failed on this machine"
                           f" ({lines[-1].strip() if lines else 'rc ' + str(cp.returncode)})")
        cp = run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                 check=False, env=env, timeout=1200)
        if cp.returncode != 0:
            lines = [ln for ln in (cp.stderr + cp.stdout).splitlines() if ln.startswith("E:")] or \
                    (cp.stderr + cp.stdout).splitlines()[-1:]
            why = lines[-1] if lines else f"rc {cp.returncode}"
            if NETWORK_ERROR_RE.search(cp.stdout + cp.stderr):
                raise LabError(f"package registry unreachable while installing {' '.join(missing)}: {why}")
            raise LabError(f"could not install host packages {' '.join(missing)}: {why}")
    finally:
        if guarded:
            guard.unlink(missing_ok=True)


def ensure_ssh_key() -> str:
    SSH_DIR.mkdir(parents=True, exist_ok=True)
    os.chmod(SSH_DIR, 0o700)
    if not SSH_KEY.exists() or not SSH_KEY.with_suffix(".pub").exists():
        for p in (SSH_KEY, SSH_KEY.with_suffix(".pub")):
            p.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vicireg-lab", "-f", str(SSH_KEY)])
        log(f"generated lab SSH key {SSH_KEY}")
    return SSH_KEY.with_suffix(".pub").read_text()


@contextlib.contextmanager
def lab_lock():
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("waiting for another labctl run to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Cached roots
# --------------------------------------------------------------------------------------------

def host_mirror() -> str | None:
    """The Debian mirror of this machine's own apt sources (None: debootstrap's default)."""
    if os.environ.get("VICIREG_LAB_MIRROR"):
        return os.environ["VICIREG_LAB_MIRROR"].rstrip("/")
    candidates = []
    src_dir = Path("/etc/apt/sources.list.d")
    for f in sorted(src_dir.glob("*.sources")) if src_dir.is_dir() else []:
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", f.read_text()):
                fields = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith(("#", " ")):
                        k, v = line.split(":", 1)
                        fields[k.strip().lower()] = v.strip()
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                    continue
                suites = fields.get("suites", "").split()
                if any(s.endswith("-security") for s in suites):
                    continue
                candidates += fields.get("uris", "").split()
    lists = [Path("/etc/apt/sources.list")] + (sorted(src_dir.glob("*.list")) if src_dir.is_dir() else [])
    for f in lists:
        with contextlib.suppress(OSError):
            for line in f.read_text().splitlines():
                parts = re.sub(r"\[[^\]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb" and not parts[2].endswith("-security"):
                    candidates.append(parts[1])
    for uri in candidates:
        if uri.startswith(("http://", "https://")) and "security" not in uri:
            return uri.rstrip("/")
    return None


def root_recipe(cfg: dict, name: str) -> dict:
    spec = cfg["roots"][name]
    return {
        "builder_version": BUILDER_VERSION,
        "builder_code": BUILDER_CODE_HASH,
        "name": name, "suite": spec["suite"], "asterisk_major": int(spec["asterisk_major"]),
        "packages": list(spec["packages"]), "apt_options": list(spec.get("apt_options") or []),
    }


def recipe_hash(cfg: dict, name: str) -> str:
    return hashlib.sha256(json.dumps(root_recipe(cfg, name), sort_keys=True).encode()).hexdigest()


def root_stamp(name: str) -> dict | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((ROOTS_DIR / name / STAMP_NAME).read_text())
    return None


def root_valid(cfg: dict, name: str) -> bool:
    st = root_stamp(name)
    return bool(st) and st.get("hash") == recipe_hash(cfg, name) and \
        (ROOTS_DIR / name / "usr/sbin/asterisk").exists()


def cleanup_stale_builds() -> None:
    """Remove half-built roots left by a killed build (processes, mounts, directories)."""
    if not ROOTS_DIR.is_dir():
        return
    for d in ROOTS_DIR.iterdir():
        if d.name.startswith(".") and (BUILD_MARK in d.name or OLD_MARK in d.name):
            for _ in range(10):   # a dying debootstrap may still spawn a child or two
                pids = processes_rooted_under([str(d)]) + processes_referencing(str(d), with_cwd=True)
                if not pids:
                    break
                kill_pids(pids, f"stale build processes in {d.name}", grace=2.0)
            umount_all([str(d)], f"stale build mounts in {d.name}")
            log(f"removing stale root build {d}")
            safe_rmtree(d)


def _run_logged(cmd: list[str], logf, env: dict | None = None) -> int:
    logf.write(f"\n$ {shlex.join(cmd)}\n")
    logf.flush()
    p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    with _BUILD_LOCK:
        _BUILD_PROCS.add(p)
    try:
        return p.wait()
    finally:
        with _BUILD_LOCK:
            _BUILD_PROCS.discard(p)


def abort_builds() -> None:
    with _BUILD_LOCK:
        procs = list(_BUILD_PROCS)
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)


def _log_tail(path: Path, n: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    return ""


def _build_root(cfg: dict, name: str, mirror: str | None) -> str:
    """debootstrap + packages into a temp dir, stamp it, rename it into place atomically."""
    spec = cfg["roots"][name]
    suite, major = spec["suite"], int(spec["asterisk_major"])
    final = ROOTS_DIR / name
    tmp = ROOTS_DIR / f".{name}{BUILD_MARK}{os.getpid()}"
    logpath = BUILD_LOG_DIR / f"build-{name}.log"
    BUILD_LOG_DIR.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        umount_all([str(tmp)], f"old build dir of {name}")
        safe_rmtree(tmp)
    tmp.mkdir(parents=True)
    env = dict(CHROOT_ENV, DEBIAN_FRONTEND="noninteractive")
    apt_opts = [str(o) for o in spec.get("apt_options") or []]

    def fail(step: str, default: str) -> LabError:
        tail = _log_tail(logpath, 60)
        if NETWORK_ERROR_RE.search(tail):
            line = next((ln for ln in reversed(tail.splitlines()) if NETWORK_ERROR_RE.search(ln)), "")
            return LabError(f"package registry unreachable while building root {name} ({step}): "
                            f"{line.strip()[:200]} [log: {logpath}]")
        errs = [ln for ln in tail.splitlines()
                if ln.startswith(("E:", "W: Failure")) or "Unable to locate package" in ln
                or "no installation candidate" in ln or "Couldn't" in ln]
        last = errs[-1] if errs else (tail.splitlines() or [""])[-1]
        return LabError(f"{default}: {last.strip()[:200]} [log: {logpath}]")

    try:
        with open(logpath, "w") as logf:
            logf.write(f"# vicireg lab root {name}: debootstrap --variant=minbase {suite} + {spec['packages']}\n")
            cmd = ["debootstrap", "--variant=minbase", suite, str(tmp)] + ([mirror] if mirror else [])
            if _run_logged(cmd, logf) != 0:
                raise fail(f"debootstrap {suite}", f"debootstrap {suite} failed for root {name}")
            policy = tmp / "usr/sbin/policy-rc.d"
            policy.write_text("#!/bin/sh\n# vicireg lab: services never start from package scripts\nexit 101\n")
            policy.chmod(0o755)
            resolv = tmp / "etc/resolv.conf"
            if resolv.is_symlink() or resolv.exists():
                resolv.unlink()
            shutil.copyfile("/etc/resolv.conf", resolv)
            mount_proc_dev(tmp)
            try:
                chroot = ["chroot", str(tmp)]
                if _run_logged(chroot + ["apt-get", "update", "-q", *apt_opts], logf, env) != 0:
                    raise fail(f"apt-get update in {suite}", f"apt-get update failed in the {suite} root")
                rc = _run_logged(chroot + ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                           *apt_opts, *spec["packages"]], logf, env)
                if rc != 0:
                    raise fail(f"apt-get install in {suite}",
                               f"Asterisk {major} could not be installed from Debian {suite}")
                cp = run(chroot + ["/usr/sbin/asterisk", "-V"], check=False, env=env)
                version = cp.stdout.strip()
                logf.write(f"\n# asterisk -V: {version}\n")
                if not version.startswith(f"Asterisk {major}."):
                    raise LabError(f"Asterisk {major} could not be installed from Debian {suite}: "
                                   f"the package provides {version or 'no asterisk binary'!r} [log: {logpath}]")
                _run_logged(chroot + ["ssh-keygen", "-A"], logf, env)
                _run_logged(chroot + ["apt-get", "clean"], logf, env)
            finally:
                umount_all([str(tmp)], f"build mounts of {name}")
        (tmp / STAMP_NAME).write_text(json.dumps({
            "hash": recipe_hash(cfg, name), "recipe": root_recipe(cfg, name),
            "asterisk_version": version, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2) + "\n")
        old = None
        if final.exists():
            old = ROOTS_DIR / f".{name}{OLD_MARK}{os.getpid()}"
            os.rename(final, old)
        os.rename(tmp, final)
        if old:
            safe_rmtree(old)
        return version
    except BaseException:
        for undo in (lambda: kill_pids(processes_rooted_under([str(tmp)]) + processes_referencing(str(tmp)),
                                       f"build processes of {name}", grace=1.0),
                     lambda: umount_all([str(tmp)], f"build mounts of {name}"),
                     lambda: safe_rmtree(tmp)):
            with contextlib.suppress(Exception):
                undo()
        raise


# The recipe includes the builder's own code; hashed once at import, so an edit of this file
# while a build runs cannot make that build's stamp disagree with the code that built it.
BUILDER_CODE_HASH = hashlib.sha256(inspect.getsource(_build_root).encode()).hexdigest()


def build_roots(cfg: dict, names: list[str]) -> None:
    if not names:
        return
    ROOTS_DIR.mkdir(parents=True, exist_ok=True)
    mirror = host_mirror()
    for name in names:
        if mirror:
            suite = cfg["roots"][name]["suite"]
            try:
                with urllib.request.urlopen(f"{mirror}/dists/{suite}/Release", timeout=20) as r:
                    r.read(64)
            except Exception as exc:   # noqa: BLE001 - any failure means the registry is unusable
                raise LabError(f"package registry unreachable: the Debian mirror (VICIREG_LAB_MIRROR or this machine's apt "
                               f"sources) does not serve dists/{suite}/Release ({exc.__class__.__name__}: "
                               f"{getattr(exc, 'reason', exc)})") from None
    log(f"building cached root(s) {', '.join(names)} in parallel (debootstrap + asterisk; ~1-2 min)")
    t = time.monotonic()
    errors: dict[str, BaseException] = {}
    with cf.ThreadPoolExecutor(max_workers=len(names)) as ex:
        futs = {ex.submit(_build_root, cfg, n, mirror): n for n in names}
        try:
            for fut in cf.as_completed(futs):
                n = futs[fut]
                try:
                    log(f"root {n} ready: {fut.result()} ({time.monotonic() - t:.0f}s)")
                except LabError as exc:
                    errors[n] = exc
        except BaseException:
            abort_builds()
            raise
    if errors:
        # Asterisk-version failures first: they are the message the operator must see.
        first = sorted(errors.items(), key=lambda kv: "could not be installed" not in str(kv[1]))[0][1]
        raise first


# --------------------------------------------------------------------------------------------
# Hosts (overlay instances of a cached root)
# --------------------------------------------------------------------------------------------

def read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split()[0])
    return None


def asterisk_rx(host: Host, command: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return run(["chroot", str(host.merged), "/usr/sbin/asterisk", "-rx", command],
               check=False, timeout=timeout, env=CHROOT_ENV)


def host_health(cfg: dict, host: Host, fingerprint: str) -> tuple[bool, str]:
    """Is this host already up exactly as wanted? (cheap checks, no waiting)"""
    if not host.dir.is_dir():
        return False, "absent"
    by_target = {m.target: m for m in read_mounts()}
    ov = by_target.get(str(host.merged))
    if not ov or ov.fstype != "overlay" or f"lowerdir={ROOTS_DIR / host.flavor}" not in ov.options:
        return False, ("stopped" if not ov else "overlay is not the expected one")
    for sub in ("proc", "dev", "dev/pts"):
        if str(host.merged / sub) not in by_target:
            return False, f"/{sub} not mounted"
    with contextlib.suppress(OSError):
        if (host.dir / "fingerprint").read_text().strip() != fingerprint:
            return False, "configuration or root changed"
    if not (host.dir / "fingerprint").exists():
        return False, "no fingerprint"
    for d in host.daemons:
        pid = read_pid(host.dir / f"{d}.pid")
        if not pid_alive(pid) or proc_root(pid) != str(host.merged) or proc_comm(pid) != d:
            return False, f"{d} not running"
    cp = asterisk_rx(host, "core show version", timeout=5)
    if cp.returncode != 0 or "Asterisk" not in cp.stdout:
        return False, "asterisk does not answer"
    return True, "running"


def teardown_host(host: Host, remove: bool = False) -> None:
    if host.dir.exists() or mounts_under([str(host.dir)]):
        kill_pids(processes_rooted_under([str(host.dir)]), f"{host.name}")
        umount_all([str(host.dir)], host.name)
        for d in host.daemons:
            (host.dir / f"{d}.pid").unlink(missing_ok=True)
        (host.dir / "fingerprint").unlink(missing_ok=True)
    if remove:
        safe_rmtree(host.dir)


def spawn(host: Host, label: str, argv: list[str]) -> int:
    """Start argv chrooted into the host, in a UTS namespace carrying the host's name."""
    logf = open(host.logdir / f"{label}.log", "ab")
    cmd = ["unshare", "--uts", "--", "/bin/sh", "-c", 'hostname "$0" && exec "$@"', host.name,
           "chroot", str(host.merged), *argv]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                         env=CHROOT_ENV, start_new_session=True, close_fds=True)
    logf.close()
    SPAWNED[p.pid] = p
    (host.dir / f"{label}.pid").write_text(f"{p.pid}\n")
    return p.pid


def create_host(cfg: dict, host: Host, files: dict, fingerprint: str) -> None:
    teardown_host(host, remove=True)
    for sub in ("upper", "work", "merged", "log"):
        (host.dir / sub).mkdir(parents=True, exist_ok=True)
    lower = ROOTS_DIR / host.flavor
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={lower},upperdir={host.dir / 'upper'},workdir={host.dir / 'work'}", str(host.merged)])
    mount_proc_dev(host.merged)
    m = host.merged
    for rel, (content, mode) in files.items():
        p = m / rel
        if content is None:
            p.unlink(missing_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink():
            p.unlink()
        p.write_text(content)
        os.chmod(p, mode)
    if host.role == "dialer":
        os.chmod(m / "root/.ssh", 0o700)
        (m / "run/sshd").mkdir(parents=True, exist_ok=True)
        os.chmod(m / "run/sshd", 0o755)
    (m / "run/asterisk").mkdir(parents=True, exist_ok=True)
    (host.dir / "fingerprint").write_text(fingerprint + "\n")
    if host.role == "dialer":
        spawn(host, "sshd", ["/usr/sbin/sshd", "-D", "-e"])
    spawn(host, "asterisk", ["/usr/sbin/asterisk", "-f", "-g"])


def _daemon_check(host: Host) -> None:
    for d in host.daemons:
        pid = read_pid(host.dir / f"{d}.pid")
        if not pid_alive(pid):
            tail = _log_tail(host.logdir / f"{d}.log", 5).replace("\n", " | ")
            extra = ""
            if d == "asterisk":
                msgs = [ln for ln in _log_tail(host.merged / "var/log/asterisk/messages", 200).splitlines()
                        if "ERROR" in ln]
                extra = f"; last error: {msgs[-1]}" if msgs else ""
            raise LabError(f"{host.name}: {d} exited during start ({tail[-300:]}{extra})")


def wait_host_ready(cfg: dict, host: Host, deadline: float) -> dict:
    """Poll until Asterisk (and sshd for dialers) answer; return facts about the host."""
    def poll(what: str, fn):
        while True:
            _daemon_check(host)
            res = fn()
            if res:
                return res
            if time.monotonic() > deadline:
                raise LabError(f"{host.name}: timed out waiting for {what} "
                               f"[logs: {host.logdir}, {host.merged / 'var/log/asterisk/messages'}]")
            time.sleep(0.2)

    def booted():
        try:
            cp = asterisk_rx(host, "core waitfullybooted", timeout=max(1.0, min(30.0, deadline - time.monotonic())))
        except LabError:
            return False
        out = cp.stdout + cp.stderr
        # Early in its start Asterisk answers the console before it has registered its commands.
        return cp.returncode == 0 and "Unable to connect" not in out and "No such command" not in out

    poll("Asterisk to boot", booted)

    def version():
        text = asterisk_rx(host, "core show version").stdout.strip()
        return text if text.startswith("Asterisk ") else None

    poll("Asterisk to answer 'core show version'", version)
    ver = asterisk_rx(host, "core show version").stdout.strip()
    if not ver.startswith(f"Asterisk {host.major}."):
        raise LabError(f"{host.name}: expected Asterisk {host.major}, 'core show version' says {ver[:80]!r}")
    facts = {"asterisk_version": ver.split()[1] if len(ver.split()) > 1 else ver}
    iax = asterisk_rx(host, "iax2 show netstats")
    if iax.returncode != 0 or "No such command" in iax.stdout:
        raise LabError(f"{host.name}: chan_iax2 is not loaded")
    if host.role == "dialer":
        if host.major < 21:
            sip = asterisk_rx(host, "sip show settings")
            if "No such command" in sip.stdout or host.address not in sip.stdout:
                raise LabError(f"{host.name}: chan_sip is not loaded/bound ('sip show settings')")
        tr = asterisk_rx(host, "pjsip show transports").stdout
        if "transport-udp" not in tr or "transport-tcp" not in tr:
            raise LabError(f"{host.name}: PJSIP transports did not come up (port taken?): "
                           f"see {host.merged / 'var/log/asterisk/messages'}")

        def ssh_ok():
            cp = run(ssh_command(cfg, host, "asterisk -rx 'core show version'", connect_timeout=3),
                     check=False, timeout=20)
            return cp.returncode == 0 and "Asterisk" in cp.stdout
        poll("sshd to accept the lab key", ssh_ok)
    return facts


def ssh_command(cfg: dict, host: Host, remote: str | None = None, connect_timeout: int = 5) -> list[str]:
    cmd = ["ssh", "-F", "/dev/null", "-i", str(SSH_KEY), "-p", str(cfg["dialer"]["ssh_port"]),
           "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "LogLevel=ERROR", "-o", f"ConnectTimeout={connect_timeout}", f"root@{host.address}"]
    return cmd + ([remote] if remote else [])


# --------------------------------------------------------------------------------------------
# Kamailio (the SIP carrier, run from the host's own package)
# --------------------------------------------------------------------------------------------

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
                    f'\t\tsl_send_reply("403", "Domain Not Served");\n\t\texit;\n\t}}')
    aliases = "\n".join(f'alias="{d}"' for d in domains if d != sc["address"])
    ctx = {"address": sc["address"], "port": sc["port"], "realm": sc["realm"], "aliases": aliases,
           "mpath": kamailio_mpath(), "min_expires": sc.get("min_expires", 10),
           "default_expires": sc.get("default_expires", 120), "max_expires": sc.get("max_expires", 3600),
           "htable_init": "\n".join(init), "domain_check": domain_check, "log_prefix": "carrier:"}
    return render(_template("kamailio.cfg"), ctx, "kamailio.cfg")


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


def start_kamailio(cfg: dict, cfg_text: str) -> int:
    (KAM_DIR / "run").mkdir(parents=True, exist_ok=True)
    KAM_CFG.write_text(cfg_text)
    os.chmod(KAM_CFG, 0o640)
    cp = run([kamailio_bin(), "-c", "-f", str(KAM_CFG), "-Y", str(KAM_DIR / "run")], check=False, timeout=30)
    if cp.returncode != 0:
        errs = [ln for ln in (cp.stderr + cp.stdout).splitlines() if "ERROR" in ln or "CRITICAL" in ln]
        raise LabError(f"generated Kamailio configuration is invalid: {(errs or ['?'])[0].strip()[:200]}")
    logf = open(KAM_DIR / "kamailio.log", "ab")
    p = subprocess.Popen([kamailio_bin(), "-f", str(KAM_CFG), "-P", str(KAM_PIDFILE), "-Y", str(KAM_DIR / "run"),
                          "-DD", "-E", "-m", "32", "-M", "4"],
                         stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                         env=CHROOT_ENV, start_new_session=True, close_fds=True)
    logf.close()
    SPAWNED[p.pid] = p
    (KAM_DIR / "main.pid").write_text(f"{p.pid}\n")
    return p.pid


def sip_options(addr: str, port: int, timeout: float = 1.0) -> str | None:
    """Send one OPTIONS over UDP; return the status line of the answer (None: no answer)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        tag, callid, branch = secrets.token_hex(4), secrets.token_hex(8), secrets.token_hex(6)
        msg = (f"OPTIONS sip:{addr}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{branch};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:labctl@127.0.0.1>;tag={tag}\r\n"
               f"To: <sip:{addr}:{port}>\r\nCall-ID: {callid}@labctl\r\nCSeq: 1 OPTIONS\r\n"
               f"Contact: <sip:labctl@127.0.0.1:{lport}>\r\nAccept: application/sdp\r\n"
               f"Content-Length: 0\r\n\r\n")
        s.settimeout(timeout)
        s.sendto(msg.encode(), (addr, port))
        data, _ = s.recvfrom(65535)
        return data.decode(errors="replace").split("\r\n", 1)[0]
    except OSError:
        return None
    finally:
        s.close()


def wait_kamailio_ready(cfg: dict, deadline: float) -> dict:
    sc = cfg["sip_carrier"]
    while True:
        pid = read_pid(KAM_DIR / "main.pid")
        if not pid_alive(pid):
            tail = [ln for ln in _log_tail(KAM_DIR / "kamailio.log", 30).splitlines() if "ERROR" in ln]
            raise LabError(f"kamailio exited during start: {(tail or ['see ' + str(KAM_DIR / 'kamailio.log')])[-1][:250]}")
        st = sip_options(sc["address"], int(sc["port"]), timeout=0.5)
        if st and " 200 " in st + " ":
            return {"pid": pid}
        if time.monotonic() > deadline:
            raise LabError(f"kamailio does not answer OPTIONS on {sc['address']}:{sc['port']} "
                           f"(got {st!r}) [log: {KAM_DIR / 'kamailio.log'}]")
        time.sleep(0.2)


# --------------------------------------------------------------------------------------------
# State, inventory, facts
# --------------------------------------------------------------------------------------------

def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def load_state() -> dict:
    with contextlib.suppress(OSError, ValueError):
        st = json.loads(STATE_FILE.read_text())
        if isinstance(st, dict):
            return st
    return {}


def write_inventory(cfg: dict, dialers: list[Host]) -> None:
    key = str(SSH_KEY)
    lines = ["---",
             "# GENERATED by `python3 lab/labctl.py up`: do not edit, not committed.",
             f"# {len(dialers)} lab dialer(s); facts for tests: {FACTS_FILE}",
             "all:", "  children:", "    dialers:", "      children:"]
    majors = sorted({int(cfg['roots'][r]['asterisk_major']) for r in ('a16', 'a22')})
    for major in majors:
        group = [h for h in dialers if h.major == major]
        lines.append(f"        lab_asterisk{major}:")
        if not group:
            lines.append("          hosts: {}")
            continue
        lines.append("          hosts:")
        for h in group:
            lines += [f"            {h.name}:",
                      f"              ansible_host: {h.address}",
                      f"              ansible_port: {cfg['dialer']['ssh_port']}",
                      "              ansible_user: root",
                      f"              ansible_ssh_private_key_file: {key}",
                      f"              lab_asterisk_version: {h.major}",
                      f"              lab_dialer_index: {h.index}"]
    atomic_write(INVENTORY_FILE, "\n".join(lines) + "\n")


def build_facts(cfg: dict, dialers: list[Host], carrier: Host, host_facts: dict, running: bool) -> dict:
    d, sc, ic = cfg["dialer"], cfg["sip_carrier"], cfg["iax_carrier"]
    accounts = all_accounts(cfg)
    out_dialers = []
    for h in dialers:
        pj = int(d["pjsip_port_a16"] if h.major < 21 else d["sip_port"])
        ports = {"ssh": int(d["ssh_port"]), "pjsip": pj, "iax2": int(d["iax_port"]), "ami": int(d["ami_port"])}
        if h.major < 21:
            ports["sip"] = int(d["sip_port"])
        out_dialers.append({
            "name": h.name, "index": h.index, "address": h.address, "asterisk_major": h.major,
            "asterisk_version": host_facts.get(h.name, {}).get("asterisk_version"),
            "group": f"lab_asterisk{h.major}", "root": str(h.merged), "ports": ports,
            "rtp": [int(d["rtp_base"]) + 100 * h.index, int(d["rtp_base"]) + 100 * h.index + 98],
            "chan_sip": h.major < 21, "pjsip_transports": ["transport-udp", "transport-tcp"],
            "accounts": {a["kind"]: {k: v for k, v in a.items() if k not in ("index",)}
                         for a in accounts if a["index"] == h.index},
            "astloop_secret": derive_password(str(cfg["accounts"]["seed"]), f"ASTloop@{h.name}"),
        })
    return {
        "_comment": "GENERATED by lab/labctl.py - LAB-ONLY secrets, never reuse them",
        "running": running, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "hosts": len(dialers),
        "ssh": {"port": int(d["ssh_port"]), "user": "root", "private_key": str(SSH_KEY)},
        "ami": {"port": int(d["ami_port"]), "username": cfg["ami"]["username"], "secret": cfg["ami"]["secret"]},
        "sip_carrier": {"address": sc["address"], "port": int(sc["port"]), "transports": ["udp", "tcp"],
                        "realm": sc["realm"], "domains": sc.get("domains"), "software": "kamailio",
                        "names": ["lab.carrier", LONG_CARRIER_NAME],
                        "responses": {"good": "200 (saved in location)", "wrong_password": "401 re-challenge",
                                      "forbidden": "403", "unknown_user": "404"}},
        "iax_carrier": {"name": carrier.name, "address": carrier.address, "port": int(ic["port"]),
                        "names": ["iax.lab.carrier"],
                        "context": ic["context"], "root": str(carrier.merged),
                        "asterisk_version": host_facts.get(carrier.name, {}).get("asterisk_version")},
        "dialers": out_dialers,
        "accounts": accounts,
        "forbidden": list(cfg["accounts"].get("forbidden") or []),
        "tools": {"sipp": shutil.which("sipp"), "sipsak": shutil.which("sipsak")},
        "inventory": str(INVENTORY_FILE),
    }


def write_state(cfg: dict, status: str, n: int, hosts: list[Host]) -> None:
    entries = []
    for h in hosts:
        entries.append({
            "name": h.name, "role": h.role, "flavor": h.flavor, "asterisk_major": h.major,
            "index": h.index, "address": h.address, "dir": str(h.dir), "merged": str(h.merged),
            "mounts": [m.target for m in mounts_under([str(h.dir)])],
            "pids": {d: read_pid(h.dir / f"{d}.pid") for d in h.daemons},
        })
    state = {
        "status": status, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "hosts_requested": n,
        "hosts": entries,
        "kamailio": {"pid": read_pid(KAM_DIR / "main.pid"), "cfg": str(KAM_CFG),
                     "address": cfg["sip_carrier"]["address"], "port": cfg["sip_carrier"]["port"]},
        "roots": {r: (root_stamp(r) or {}).get("asterisk_version") for r in cfg["roots"]},
    }
    atomic_write(STATE_FILE, json.dumps(state, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def known_host_dirs(cfg: dict) -> list[Host]:
    """Hosts that exist on disk (possibly stale), reconstructed from their directory names."""
    out = []
    if not HOSTS_DIR.is_dir():
        return out
    carrier = carrier_host(cfg)
    for d in sorted(HOSTS_DIR.iterdir()):
        if d.name == carrier.name:
            out.append(carrier)
            continue
        m = re.fullmatch(r"lab-(a\d+)-(\d+)", d.name)
        if m and m.group(1) in cfg["roots"]:
            i = int(m.group(2))
            base = int(cfg["lab"]["dialer_address_base"])
            out.append(Host(d.name, "dialer", m.group(1), int(cfg["roots"][m.group(1)]["asterisk_major"]),
                            i, f"127.0.0.{base + i}"))
        else:
            out.append(Host(d.name, "unknown", "?", 0, 0, "?"))
    return out


def cmd_up(cfg: dict, n: int) -> int:
    require_root()
    max_hosts = int(cfg["lab"]["max_hosts"])
    if not 1 <= n <= max_hosts:
        raise LabError(f"--hosts must be between 1 and {max_hosts} (got {n})")
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    with lab_lock():
        ensure_host_packages(cfg)
        for p in (HOSTS_DIR, KAM_DIR, ROOTS_DIR):
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
                  if not _under(proc_root(p) or "", wanted_dirs)]
        kill_pids(strays, "stray lab processes")
        umount_all([m.target for m in mounts_under([str(STATE_DIR)])
                    if not _under(m.target, wanted_dirs)], "stray lab mounts")

        # 2. cached roots
        stale_roots = [r for r in sorted({h.flavor for h in wanted}) if not root_valid(cfg, r)]
        if stale_roots:
            for h in known_host_dirs(cfg):
                if h.flavor in stale_roots:
                    teardown_host(h)
            build_roots(cfg, stale_roots)
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
        for h in to_start:
            teardown_host(h)
        if not kam_ok:
            if kam_why != "not running" or kamailio_pids():
                log(f"kamailio: {kam_why} - restarting it")
            stop_kamailio()

        # 4. preconditions: every address:port we are about to bind must be free
        ports = []
        if not kam_ok:
            sc = cfg["sip_carrier"]
            ports += [(p, sc["address"], int(sc["port"]), "the SIP carrier (kamailio)") for p in ("udp", "tcp")]
        for h in to_start:
            ports += [(p, a, port, h.name) for p, a, port in host_ports(cfg, h)]
        check_ports(ports)

        # 5. start, wait, and on any failure tear down what this run started
        started_hosts: list[Host] = []
        started_kam = False
        lock = threading.Lock()
        try:
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
            deadline = time.monotonic() + float(cfg["lab"].get("ready_timeout", 120))
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
            with contextlib.suppress(Exception):
                write_state(cfg, "failed", n, [h for h in wanted if h not in started_hosts])
            raise

        write_state(cfg, "up", n, wanted)
        write_inventory(cfg, dialers)
        atomic_write(FACTS_FILE, json.dumps(build_facts(cfg, dialers, carrier, host_facts, True), indent=2) + "\n",
                     mode=0o600)
    sc = cfg["sip_carrier"]
    changed = bool(to_start) or not kam_ok
    head = "lab up" if changed else "lab already running (nothing changed)"
    print(f"{head} in {time.monotonic() - T0:.1f}s: kamailio {sc['address']}:{sc['port']}, "
          f"{carrier.name} {carrier.address}:{cfg['iax_carrier']['port']}, dialers: "
          + ", ".join(f"{h.name}={h.address} (Asterisk {host_facts.get(h.name, {}).get('asterisk_version')})"
                      for h in dialers))
    print(f"inventory: {INVENTORY_FILE}   facts: {FACTS_FILE}")
    return 0


def cmd_down(cfg: dict) -> int:
    require_root()
    signal.signal(signal.SIGTERM, _on_signal)
    with lab_lock():
        before_mounts = len(mounts_under([str(STATE_DIR), str(CACHE_DIR)]))
        pids = processes_rooted_under([str(STATE_DIR), str(CACHE_DIR)])
        kill_pids(pids, "lab hosts", reap_wait=5.0)
        stop_kamailio(reap_wait=5.0)
        umount_all([str(STATE_DIR), str(CACHE_DIR)], "lab mounts")
        cleanup_stale_builds()
        for h in known_host_dirs(cfg):
            for d in ("asterisk", "sshd"):
                (h.dir / f"{d}.pid").unlink(missing_ok=True)
        left_p = processes_rooted_under([str(STATE_DIR), str(CACHE_DIR)]) + kamailio_pids()
        left_m = mounts_under([str(STATE_DIR), str(CACHE_DIR)])
        if left_p or left_m:
            raise LabError(f"down incomplete: processes {left_p}, mounts {[m.target for m in left_m]}")
        st = load_state()
        st.update({"status": "down", "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        for h in st.get("hosts", []):
            h["mounts"], h["pids"] = [], {}
        if "kamailio" in st:
            st["kamailio"]["pid"] = None
        atomic_write(STATE_FILE, json.dumps(st, indent=2) + "\n")
        with contextlib.suppress(OSError, ValueError):
            facts = json.loads(FACTS_FILE.read_text())
            facts["running"] = False
            atomic_write(FACTS_FILE, json.dumps(facts, indent=2) + "\n", mode=0o600)
    print(f"lab down: stopped {len(pids)} host process(es) and kamailio, unmounted {before_mounts} mount(s)"
          if pids or before_mounts else "lab down: nothing was running")
    return 0


def lab_process_pids() -> list[int]:
    """Every process the lab runs (hosts' processes + kamailio) - used by status and benchmarks."""
    return sorted(set(processes_rooted_under([str(HOSTS_DIR)]) + kamailio_pids()))


def collect_status(cfg: dict) -> dict:
    st = load_state()
    out = {"state_file": st.get("status", "none"), "hosts_requested": st.get("hosts_requested"),
           "roots": {}, "components": []}
    for r in cfg["roots"]:
        stamp = root_stamp(r)
        out["roots"][r] = {"path": str(ROOTS_DIR / r), "cached": bool(stamp),
                           "current": root_valid(cfg, r) if stamp else False,
                           "asterisk": (stamp or {}).get("asterisk_version")}
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
    require_root()
    signal.signal(signal.SIGTERM, _on_signal)
    with lab_lock():
        ensure_host_packages(cfg)
        cleanup_stale_builds()
        names = [r for r in cfg["roots"] if force or not root_valid(cfg, r)]
        if names:
            in_use = [h for h in known_host_dirs(cfg) if h.flavor in names and mounts_under([str(h.dir)])]
            if in_use:
                raise LabError(f"roots {names} are in use by running hosts: run `labctl.py down` first")
        build_roots(cfg, names)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="labctl.py", description="vicireg loopback test lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build (cached) and start the lab; idempotent")
    up.add_argument("--hosts", type=int, default=None, help="number of dialers (default from lab.yml)")
    sub.add_parser("down", help="stop everything, unmount everything; idempotent")
    st = sub.add_parser("status", help="print the lab's state")
    st.add_argument("--json", action="store_true")
    b = sub.add_parser("build", help="only build the cached roots")
    b.add_argument("--force", action="store_true", help="rebuild even when the recipe is unchanged")
    sub.add_parser("accounts", help="print the carrier accounts (lab-only secrets)")
    s = sub.add_parser("ssh", help="ssh into a lab dialer with the lab key")
    s.add_argument("host")
    s.add_argument("remote", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
