"""What the SIP carrier (Kamailio) saw, for tests: the REGISTER requests it received and answered
(its `VICIREG-REGISTER` log lines) and the contacts it holds (usrloc, through `kamcmd ul.dump` on
the ctl module's binrpc socket). Importable: `from labkit import registrar`.

    registrar.contacts(user=None) -> [{aor, contact, expires, received, user_agent, callid, ...}]
    registrar.registers(since_line=0, stage=None) -> [{line, stage, ru, to, ..., callid, cseq}]
    registrar.log_lines() -> the number of lines in kamailio.log now (a `since_line` for later)
    registrar.flush(user) -> drop the user's contacts (ul.rm location USER)
"""
from __future__ import annotations

import shutil

from .config import KAM_CTL, KAM_LOG, LabError
from .procs import run

MARKER = "VICIREG-REGISTER "
NULL = "<null>"


# --------------------------------------------------------------------------------------------
# REGISTER log lines
# --------------------------------------------------------------------------------------------

def parse_register_line(text: str) -> dict | None:
    """The fields of one `VICIREG-REGISTER k=v | k=v ...` log line (None: not such a line).
    A value Kamailio did not have ($au without credentials ...) is None."""
    pos = text.find(MARKER)
    if pos < 0:
        return None
    out: dict = {}
    for part in text[pos + len(MARKER):].rstrip("\r\n").split(" | "):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        out[key.strip()] = None if value == NULL else value
    return out


def log_lines(path=KAM_LOG) -> int:
    """How many lines kamailio.log has now (pass it as since_line to see only what follows)."""
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def registers(since_line: int = 0, stage: str | None = None, path=KAM_LOG) -> list[dict]:
    """Every VICIREG-REGISTER line of kamailio.log after line since_line (1-based `line` field),
    optionally only one stage ("received" or "reply")."""
    out = []
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError:
        return out
    with f:
        for n, text in enumerate(f, 1):
            if n <= since_line or MARKER not in text:
                continue
            rec = parse_register_line(text)
            if rec is not None and (stage is None or rec.get("stage") == stage):
                out.append({"line": n, **rec})
    return out


# --------------------------------------------------------------------------------------------
# Contacts (kamcmd ul.dump)
# --------------------------------------------------------------------------------------------

def kamcmd(*args: str, timeout: float = 10) -> str:
    if not KAM_CTL.exists():
        raise LabError(f"Kamailio's control socket {KAM_CTL} is missing: is the lab up?")
    exe = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
    cp = run([exe, "-s", f"unix:{KAM_CTL}", *args], check=False, timeout=timeout)
    if cp.returncode != 0 or cp.stdout.lstrip().startswith("error"):
        raise LabError(f"kamcmd {' '.join(args)} failed: {(cp.stderr + cp.stdout).strip()[:300]}")
    return cp.stdout


def parse_kamcmd(text: str) -> list:
    """kamcmd's printout of an RPC answer as nested lists of (key, value) pairs (keys repeat,
    so no dicts); a structure is a list, a leaf a string."""
    root: list = []
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "}":
            if len(stack) > 1:
                stack.pop()
            continue
        if line == "{":
            new: list = []
            stack[-1].append(("", new))
            stack.append(new)
            continue
        key, sep, value = line.partition(":")
        value = value.strip()
        if sep and value == "{":
            new = []
            stack[-1].append((key.strip(), new))
            stack.append(new)
        elif sep:
            stack[-1].append((key.strip(), value))
        else:
            stack[-1].append(("", line))
    return root


def _walk(node, key: str):
    """Every value under key, at any depth."""
    if isinstance(node, list):
        for k, v in node:
            if k == key:
                yield v
            yield from _walk(v, key)


def _leaf(pairs: list, key: str):
    for k, v in pairs:
        if k == key and not isinstance(v, list):
            return None if v in ("[not set]", "") else v
    return None


def contacts(user: str | None = None) -> list[dict]:
    """The contacts in Kamailio's location table (all, or of AoR user)."""
    out = []
    for info in _walk(parse_kamcmd(kamcmd("ul.dump")), "Info"):
        if not isinstance(info, list):
            continue
        aor = _leaf(info, "AoR")
        if user is not None and aor != user:
            continue
        for c in _walk(info, "Contact"):
            if not isinstance(c, list):
                continue
            expires = _leaf(c, "Expires")
            out.append({"aor": aor, "contact": _leaf(c, "Address"),
                        "expires": int(expires) if expires and expires.lstrip("-").isdigit() else expires,
                        "received": _leaf(c, "Received"), "user_agent": _leaf(c, "User-Agent"),
                        "callid": _leaf(c, "Call-ID"), "cseq": _leaf(c, "CSeq"), "socket": _leaf(c, "Socket"),
                        "path": _leaf(c, "Path")})
    return out


def flush(user: str) -> bool:
    """Drop every contact of user (ul.rm location USER); False when it had none."""
    had = bool(contacts(user))
    try:
        kamcmd("ul.rm", "location", user)
    except LabError as exc:
        if "not found" in str(exc).lower() or "404" in str(exc):
            return False
        raise
    return had
