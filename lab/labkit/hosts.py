"""Lab hosts (the dialers and the IAX2 carrier): overlay instances of a cached root, their files,
their daemons (Asterisk, sshd) in a UTS namespace of their own, readiness and health."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import time

from .carriers import iax_carrier_files
from .config import (CHROOT_ENV, HOST_LAYOUT_VERSION, HOSTS_DIR, ROOTS_DIR, SSH_KEY, Host, LabError,
                     carrier_host, derive_password, render, resolv_conf_text, template)
from .procs import (SPAWNED, kill_pids, log_tail, mount_proc_dev, mounts_under, pid_alive, proc_comm,
                    proc_root, processes_rooted_under, read_mounts, read_pid, run, safe_rmtree, umount_all)


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
    files: dict[str, tuple[str | None, int]] = {}
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
            names += ["sip.conf", "sip-vicidial.conf", "dnsmgr.conf"]
        for n in common:
            files[f"etc/asterisk/{n}"] = (render(template(f"common/{n}"), ctx, n), 0o640)
        for n in names:
            files[f"etc/asterisk/{n}"] = (render(template(f"dialer/{n}"), ctx, n), 0o640)
        files["etc/ssh/sshd_config"] = (render(template("dialer/sshd_config"), ctx, "sshd_config"), 0o644)
        files["root/.ssh/authorized_keys"] = (pubkey, 0o600)
    else:
        for n in common:
            files[f"etc/asterisk/{n}"] = (render(template(f"common/{n}"), ctx, n), 0o640)
        files.update(iax_carrier_files(cfg, ctx))
    # The package's sample users.conf would add users to chan_iax2/pbx_config (and Asterisk 22
    # warns that it is deprecated): the lab hosts have none.
    files["etc/asterisk/users.conf"] = (None, 0)
    files["etc/hostname"] = (host.name + "\n", 0o644)
    # The carriers' names (lab.carrier, srv.lab.carrier ...) are in the lab DNS only, as real
    # carriers' names are: /etc/hosts names the host itself, resolv.conf points at the lab DNS.
    files["etc/hosts"] = (f"127.0.0.1\tlocalhost\n{host.address}\t{host.name}\n", 0o644)
    files["etc/resolv.conf"] = (resolv_conf_text(cfg), 0o644)
    return files


def host_fingerprint(files: dict, root_hash: str) -> str:
    h = hashlib.sha256(f"layout={HOST_LAYOUT_VERSION};root={root_hash}\n".encode())
    for path in sorted(files):
        content, mode = files[path]
        h.update(f"{path}\0{mode}\0".encode() + (content or "\0deleted").encode() + b"\0")
    return h.hexdigest()


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
    """Mount a clean overlay, write the host's files (resolv.conf included: Asterisk reads its
    nameservers at start), then start sshd (dialers) and Asterisk."""
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
            tail = log_tail(host.logdir / f"{d}.log", 5).replace("\n", " | ")
            extra = ""
            if d == "asterisk":
                msgs = [ln for ln in log_tail(host.merged / "var/log/asterisk/messages", 200).splitlines()
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
