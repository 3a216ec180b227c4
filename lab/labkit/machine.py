"""The machine itself: root check, the Debian packages the lab needs, the lab SSH key, the lock."""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path

from .config import LOCK_FILE, NETWORK_ERROR_RE, SSH_DIR, SSH_KEY, STATE_DIR, LabError, log
from .procs import run


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
    if not guard.exists():   # no service (the distro Kamailio or unbound!) may start during the install
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
def file_lock(path: Path, waiting: str | None = None):
    """An exclusive flock on path for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log(waiting)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def lab_lock():
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    return file_lock(LOCK_FILE, "waiting for another labctl run to finish")
