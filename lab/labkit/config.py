"""Paths, constants, lab.toml, the lab's hosts and accounts, and the template renderer."""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = LAB_DIR.parent
CONFIG_FILE = Path(os.environ.get("VICIREG_LAB_CONFIG") or LAB_DIR / "lab.toml")
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
KAM_LOG = KAM_DIR / "kamailio.log"
KAM_CTL = KAM_DIR / "kamailio.ctl"   # binrpc socket of Kamailio's ctl module (kamcmd -s unix:...)
DNS_DIR = STATE_DIR / "dns"
DNS_CFG = DNS_DIR / "unbound.conf"
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


class LabError(Exception):
    """A failure with a one-line explanation for the operator."""


def log(msg: str) -> None:
    print(f"[lab {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# lab.toml
# --------------------------------------------------------------------------------------------

SECTIONS = ("lab", "roots", "sip_carrier", "iax_carrier", "dns", "dialer", "ami", "accounts",
            "asterisk_modules")


def load_config(path: Path | None = None) -> dict:
    path = Path(path or CONFIG_FILE)
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except OSError as exc:
        raise LabError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{path}: not valid TOML: {exc}") from exc
    for section in SECTIONS:
        if not isinstance(cfg.get(section), dict):
            raise LabError(f"{path}: section '{section}' missing or not a table")
    sc = cfg["sip_carrier"]
    for addr in (sc["address"], sc.get("second_address") or sc["address"], sc.get("srv_address") or sc["address"],
                 cfg["iax_carrier"]["address"],
                 cfg["dns"]["address"]):
        check_address(addr)
    return cfg


def check_address(addr: str) -> None:
    try:
        ip = ipaddress.IPv4Address(str(addr))
    except ValueError:
        raise LabError(f"lab address {addr} is not in 127.0.0.0/8") from None
    if ip not in ipaddress.IPv4Network("127.0.0.0/8"):
        raise LabError(f"lab address {addr} is not in 127.0.0.0/8")
    if ipaddress.IPv4Address("127.0.0.200") <= ip <= ipaddress.IPv4Address("127.0.0.254"):
        raise LabError(f"lab address {addr} is inside 127.0.0.200-127.0.0.254, reserved for outside test peers")


_check_address = check_address   # the name labctl.py had


# --------------------------------------------------------------------------------------------
# Hosts and accounts
# --------------------------------------------------------------------------------------------

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
        check_address(addr)
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
        raise LabError(f"lab.toml: account usernames collide: {sorted(dup)}")
    return out


def resolv_conf_text(cfg: dict) -> str:
    """/etc/resolv.conf of every lab host and root: the lab DNS server only (there is no internet).
    Asterisk reads it at start: it is in place before Asterisk starts."""
    return (f"# vicireg lab: the lab DNS server only (unbound, lab/labkit/dns.py)\n"
            f"nameserver {cfg['dns']['address']}\noptions timeout:1 attempts:2\n")


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------

def render(text: str, ctx: dict, source: str) -> str:
    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key not in ctx:
            raise LabError(f"template {source}: variable '{key}' is not defined")
        return str(ctx[key])
    return re.sub(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}", sub, text)


def template(rel: str) -> str:
    return (TEMPLATE_DIR / rel).read_text()


_template = template
