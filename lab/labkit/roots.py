"""The cached Debian roots (/var/cache/vicireg-lab/roots/<name>): debootstrap + Asterisk, built in
parallel into a temp dir, stamped with their recipe hash, renamed into place when complete."""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import inspect
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from .config import (BUILD_LOG_DIR, BUILD_MARK, BUILDER_VERSION, CHROOT_ENV, NETWORK_ERROR_RE, OLD_MARK,
                     ROOTS_DIR, STAMP_NAME, LabError, log, resolv_conf_text)
from .procs import (kill_pids, log_tail, mount_proc_dev, processes_referencing, processes_rooted_under, run,
                    safe_rmtree, umount_all)

_log_tail = log_tail   # the name the builder's source uses (its text is hashed: keep it as it is)
_BUILD_PROCS: set[subprocess.Popen] = set()
_BUILD_LOCK = threading.Lock()


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


def point_resolver(cfg: dict, name: str) -> None:
    """Give a cached root the lab's resolv.conf (the builder leaves the machine's, which apt needed).

    Hosts get their own copy in their overlay; this one is for whoever else overlays the root (a
    test's oracle Asterisk). Replaced by rename, so a mounted overlay never sees a half-written file."""
    path = ROOTS_DIR / name / "etc/resolv.conf"
    text = resolv_conf_text(cfg)
    with contextlib.suppress(OSError):
        if not path.is_symlink() and path.read_text() == text:
            return
    if not path.parent.is_dir():
        return
    tmp = path.with_name(f".resolv.conf.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
