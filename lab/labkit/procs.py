"""Processes, mounts, ports and files: what runs, what is mounted, who holds an address (from /proc)."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .config import LabError, log

SPAWNED: dict[int, subprocess.Popen] = {}   # daemons started by this run (pid -> Popen)


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


def read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split()[0])
    return None


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def log_tail(path: Path, n: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    return ""


_log_tail = log_tail


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------

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


def under(path: str, prefixes: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


_under = under


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
        if root and root != "/" and under(root, prefixes) and pid_alive(pid):
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
                hit = under(os.readlink(f"/proc/{pid}/cwd"), [substr])
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


def spawn_daemon(argv: list[str], logpath: Path, pidfile: Path, env: dict) -> int:
    """Start a foreground daemon of the machine itself (Kamailio, unbound) in its own session,
    its output appended to logpath; its pid goes to pidfile."""
    logf = open(logpath, "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True, close_fds=True)
    logf.close()
    SPAWNED[p.pid] = p
    pidfile.write_text(f"{p.pid}\n")
    return p.pid


# --------------------------------------------------------------------------------------------
# Mounts
# --------------------------------------------------------------------------------------------

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
    return [m for m in read_mounts() if under(m.target, prefixes)]


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
    v6 = addr.startswith("[")
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        if proto == "tcp":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr.strip("[]"), port))
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


def check_ports(ports: list[tuple[str, str, int, str]]) -> None:
    for proto, addr, port, who in ports:
        if not port_free(proto, addr, port):
            raise LabError(f"{addr}:{port}/{proto} (needed by {who}) is already in use by "
                           f"{port_owner(proto, addr, port)} that is not part of the lab")
