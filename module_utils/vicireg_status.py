# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Read Asterisk's registration and peer status output and judge each carrier.

Parsers for what `asterisk -rx` prints (chan_sip, chan_iax2, PJSIP; Asterisk 16 and 22 layouts) and
the verdict rules.  Pure Python (3.6+): the verify module runs it on the dialer; unit tests feed it
output captured from real Asterisk in the lab (tests/data/captures).
"""
from __future__ import absolute_import, division, print_function

import re
import time

__metaclass__ = type

NOT_RUNNING = re.compile(r"Unable to connect to remote asterisk|asterisk\.ctl", re.IGNORECASE)
NO_COMMAND = re.compile(r"^No such command", re.MULTILINE)
_SIP_TIME = "%a, %d %b %Y %H:%M:%S"

OK_STATES = {"Registered"}
# Every cause the verification reports, by key: the one table of them (docs/troubleshooting.md has a
# section per key and per state; tests/unit/test_troubleshooting.py keeps the page and this table in step).
# Fields in braces are filled in by cause(); the texts are part of the report, keep them stable.
CAUSES = {
    # A state Asterisk shows settles the verdict at once (FAILED_STATES below).
    "rejected": "rejected by the carrier (wrong user or domain, or credentials refused)",
    "no_authentication": "credentials refused by the carrier (403 Forbidden)",
    "failed": "registration failed (the carrier kept refusing; Asterisk gave up)",
    "timeout": "no answer from the carrier (registration timed out)",
    "auth_sent": ("credentials refused by the carrier (Auth. Sent persists: the carrier keeps challenging "
                  "the secret)"),
    "peer_unreachable": "peer unreachable: no answer to qualify (OPTIONS) from {where}",
    # Still waiting when the carrier's time is up (Judge.timeout).
    "not_loaded": ("no {what} for this carrier in Asterisk (driver did not load it: check the include "
                   "and the log)"),
    "qualify_unknown": "peer reachability unknown after {timeout}s (qualify got no answer from {where})",
    "srv_no_answer": "no SRV target of {host} answers (tried {targets}: wrong records, or a firewall)",
    # Seen on the wire (Asterisk 16): without dnsmgr, chan_sip takes the SRV target's address but the
    # string's port (5060), not the record's.
    "srv_no_answer_sip": ("no SRV target of {host} answers (tried {targets}: wrong records, or a firewall); "
                          "chan_sip follows an SRV record's port only with dnsmgr enabled (dnsmgr.conf "
                          "enable=yes), otherwise it sends to port {port}"),
    "no_answer": "no answer from the carrier at {where} (wrong host or port, or a firewall)",
    "stuck": "still {state} after {timeout}s",
    # The carrier's host name, as the dialer resolves it (vicireg_dns.resolution_problem).
    "dns_srv_targets": "no SRV target of {name} resolves ({targets})",
    "dns_no_srv_no_address": "carrier host name {host} does not resolve (no SRV record {record} and no address)",
    "dns_no_address": "carrier host name {host} does not resolve",
    # Asterisk itself did not answer (AsteriskUnavailable: every carrier of the dialer fails with it).
    "not_running": "Asterisk is not running (asterisk -rx cannot connect)",
    "driver_not_loaded": "driver {driver} is not loaded ('{command}' is not a command)",
    "cli_failed": "asterisk -rx '{command}' failed with exit code {rc}",
    # The status audit (playbooks/status.yml): an inventory carrier the dialer cannot show at all.
    "not_on_dialer": "not on the dialer: the inventory has it, the dialer's files do not (run site.yml)",
    "driver_missing": "driver {driver} is not loaded on this Asterisk",
}


def cause(key, **fields):
    """The cause text of one CAUSES key with its fields filled in."""
    return CAUSES[key].format(**fields)


# chan_sip / chan_iax2 / PJSIP states that settle the verdict at once.
FAILED_STATES = {
    "Rejected": CAUSES["rejected"],
    "No Authentication": CAUSES["no_authentication"],
    "Failed": CAUSES["failed"],
    "Timeout": CAUSES["timeout"],
}
# States of a registration still on its way: a carrier still in one when its time is up got no answer.
WAITING_STATES = ("Request Sent", "Unregistered", "Registering", "Trying")
QUALIFY_OK = ("OK", "LAGGED", "Avail", "Reachable")
QUALIFY_BAD = ("UNREACHABLE", "Unavail", "Unreachable")


class AsteriskUnavailable(Exception):
    """Asterisk is not running or the driver is not loaded; the message says which."""


def check_cli(output, command, driver):
    """Raise AsteriskUnavailable with the cause when `asterisk -rx command` did not answer."""
    if NOT_RUNNING.search(output or ""):
        raise AsteriskUnavailable(cause("not_running"))
    if NO_COMMAND.search(output or ""):
        raise AsteriskUnavailable(cause("driver_not_loaded", driver=driver, command=command))


def _split_hostport(text):
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return "[%s]" % host, int(port) if port.isdigit() else None
    host, _, port = text.rpartition(":")
    if not host:
        return text, None
    return host, int(port) if port.isdigit() else None


def parse_sip_registry(output):
    """`sip show registry` rows: host, port, username (cut at 12), refresh, state, regtime (epoch)."""
    rows = []
    for line in output.splitlines():
        if not line.strip() or line.startswith("Host ") or re.match(r"^\d+ SIP registrations?\.", line):
            continue
        if len(line) < 70:
            continue
        # FORMAT "%-39.39s %-6.6s %-12.12s  %8d %-20.20s %-25.25s": fixed columns, states hold spaces.
        hostport = line[0:39].strip()
        username = line[47:59].strip()
        refresh = line[61:69].strip()
        state = line[70:90].strip()
        regtime = line[91:].strip()
        host, port = _split_hostport(hostport)
        if len(hostport) >= 39:
            port = None  # the column cut it: the digits shown may be part of a longer port
        rows.append({"host": host, "port": port, "hostport": hostport, "username": username,
                     "refresh": int(refresh) if refresh.isdigit() else None, "state": state,
                     "regtime": _sip_time(regtime)})
    return rows


def _sip_time(text):
    if not text:
        return None
    try:
        return time.mktime(time.strptime(text, _SIP_TIME))
    except ValueError:
        return None


def parse_iax2_registry(output):
    """`iax2 show registry` rows: host, port, username (cut at 10), perceived, refresh, state."""
    rows = []
    for line in output.splitlines():
        if not line.strip() or line.startswith("Host ") or re.match(r"^\d+ IAX2 registrations?\.", line):
            continue
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[4].isdigit():
            continue
        host, port = _split_hostport(parts[0])
        rows.append({"host": host, "port": port, "username": parts[2], "perceived": parts[3],
                     "refresh": int(parts[4]), "state": parts[5].strip()})
    return rows


def parse_pjsip_registrations(output):
    """`pjsip show registrations` rows: name, server_uri, auth, state, expires (seconds or None)."""
    rows = []
    for line in output.splitlines():
        text = line.strip()
        if not text or text.startswith(("<", "=", "Objects found", "No objects found")):
            continue
        parts = text.split()
        if len(parts) < 3 or "/" not in parts[0]:
            continue
        name, _, uri = parts[0].partition("/")
        m = re.search(r"\(exp\. (\d+)s", text)
        rows.append({"name": name, "server_uri": uri, "auth": parts[1], "state": parts[2],
                     "expires": int(m.group(1)) if m else None})
    return rows


def parse_sip_peer(output, addresses=None):
    """`sip show peer NAME` (or iax2): the Status line ('OK (1 ms)', 'UNREACHABLE', 'UNKNOWN') or None.

    With addresses (a collection of 'ip:port', the carrier's host resolved as Asterisk resolves it),
    None unless the peer already has one of them: a reload of chan_sip runs in the background, and
    until it is done the old peer answers with its old status.
    """
    if re.search(r"Peer \S+ not found", output):
        return None
    if addresses is not None:
        m = re.search(r"^\s*Addr->IP\s*:\s*(\S+)", output, re.MULTILINE)
        if not m or m.group(1) not in addresses:
            return None
    m = re.search(r"^\s*Status\s*:\s*(.+?)\s*$", output, re.MULTILINE)
    return m.group(1) if m else None


def parse_pjsip_contacts(output, aor, uri=None):
    """Status of the contacts of one AOR in `pjsip show contacts`/`pjsip show aor NAME` output.

    With uri ('sip:host:port'), only that contact counts (the AOR as this run configured it).
    """
    states = []
    for line in output.splitlines():
        m = re.match(r"^\s*Contact:\s+(\S+?)/(\S+)\s+(?:\S+\s+)?(Avail|Unavail|NonQual|Unknown|Created|Removed|"
                     r"Reachable|Unreachable)\b", line)
        if m and m.group(1) == aor and (uri is None or m.group(2) == uri):
            states.append(m.group(3))
    if not states:
        return None
    for good in QUALIFY_OK:
        if good in states:
            return good
    return states[0]


def find_row(rows, target, width, with_domain=False, addresses=()):
    """The registry row for a carrier: same host and port, username equal up to the column width.

    chan_sip prints the host as configured in a 39-character 'host:port' column (a long name is cut)
    and user@domain when the registration names a domain, cut at 12 characters.  chan_iax2 prints
    the address it resolved the host to: addresses holds those ('ip:port').
    """
    user = target["username"] or ""
    if with_domain and target.get("domain"):
        user = "%s@%s" % (user, target["domain"])
    cut = user[:width]
    host = target["host"]
    wanted = ("%s:%s" % (host, target["port"]))[:39]

    def same_place(r):
        if r.get("hostport") is not None and len(r["hostport"]) >= 39:
            return r["hostport"] == wanted  # a cut column: only its printed prefix can be compared
        if r["host"] == host and r["port"] in (None, target["port"]):
            return True
        return "%s:%s" % (r["host"], r["port"]) in addresses

    matches = [r for r in rows if same_place(r) and r["username"] in (user, cut)]
    return matches[0] if len(matches) == 1 else (None if not matches else matches)


class Judge:
    """Turns successive readings of one carrier into a verdict.

    verdict: 'registered' / 'reachable' (good), 'failed' (cause set), or None (still waiting).
    """

    def __init__(self, target, start, fresh_since=None, auth_grace=2.0):
        self.target = target
        self.start = start
        self.fresh_since = fresh_since
        self.auth_grace = auth_grace
        self.state = None
        self.verdict = None
        self.cause = None
        self.seconds = None
        # When chan_sip last registered the carrier (epoch), as the last reading showed it; None elsewhere.
        self.regtime = None
        self._auth_since = None
        # A registration that existed before a forced re-REGISTER still shows its old state for a
        # round trip: a good state only counts from this time on.
        self.accept_after = None

    def _done(self, verdict, cause, now):
        self.verdict, self.cause = verdict, cause
        self.seconds = round(now - self.start, 3)

    def observe(self, state, now, regtime=None):
        """Feed one reading; returns True once the verdict is known."""
        if self.verdict is not None:
            return True
        self.state = state
        self.regtime = regtime if regtime is not None else self.regtime
        t = self.target
        if not t["registers"]:
            return self._observe_qualify(state, now)
        if state in OK_STATES:
            if self.accept_after is not None and now < self.accept_after:
                return False
            if self.fresh_since is not None and t["driver"] == "sip" and (regtime is None or regtime < self.fresh_since):
                return False  # chan_sip reloads in the background: this row predates our reload
            self._done("registered", None, now)
        elif state in FAILED_STATES:
            self._done("failed", FAILED_STATES[state], now)
        elif state == "Auth. Sent":
            self._auth_since = self._auth_since or now
            if now - self._auth_since >= self.auth_grace:
                self._done("failed", CAUSES["auth_sent"], now)
        else:
            self._auth_since = None
        return self.verdict is not None

    def _observe_qualify(self, state, now):
        if state is None:
            return False
        if self.accept_after is not None and now < self.accept_after:
            return False  # a changed peer keeps its old qualify result until the new one is in
        if not self.target.get("qualify", True):
            # Without qualify nothing proves the carrier answers: the peer exists, that is all.
            self._done("unqualified", None, now)
        elif state.startswith(QUALIFY_OK):
            self._done("reachable", None, now)
        elif state.startswith(QUALIFY_BAD):
            where = "%s:%s" % (self.target["host"], self.target["port"])
            self._done("failed", cause("peer_unreachable", where=where), now)
        return self.verdict is not None

    def timeout(self, now, dns=None):
        """Settle a carrier still waiting when its time is up.

        dns: what vicireg_dns.resolution_problem says of the host: None (it resolves), 'srv:TARGETS'
        (the SRV targets Asterisk was sent to), or the DNS failure, which is then the cause.
        """
        if self.verdict is not None:
            return
        t = self.target
        where = "%s:%s" % (t["host"], t["port"])
        srv = dns[4:] if dns and dns.startswith("srv:") else None
        if dns and srv is None:
            text = dns
        elif self.state is None:
            text = cause("not_loaded", what="registration" if t["registers"] else "peer")
        elif not t["registers"]:
            text = cause("qualify_unknown", timeout=t["timeout"], where=where)
        elif self.state in WAITING_STATES and srv:
            text = cause("srv_no_answer_sip" if t["driver"] == "sip" else "srv_no_answer",
                         host=t["host"], targets=srv, port=t["port"])
        elif self.state in WAITING_STATES:
            text = cause("no_answer", where=where)
        else:
            text = cause("stuck", state=self.state, timeout=t["timeout"])
        self._done("failed", text, now)


def parse_sip_binds(output):
    """`sip show settings`: the UDP (and TCP/TLS when enabled) bind addresses as 'host:port' strings."""
    binds = []
    for m in re.finditer(r"^\s*(UDP|TCP|TLS)(?: SIP)? Bindaddress\s*:\s*(\S+)", output, re.MULTILINE):
        if m.group(2) not in ("Disabled", "(null)"):
            binds.append(("sip-" + m.group(1).lower(), m.group(2)))
    return binds


def parse_pjsip_transports(output):
    """`pjsip show transports`: [(name, protocol, 'host:port')]."""
    out = []
    for m in re.finditer(r"^\s*Transport:\s+(\S+)\s+(udp|tcp|tls|ws|wss)\s+\d+\s+\d+\s+(\S+)", output,
                         re.MULTILINE):
        out.append((m.group(1), m.group(2), m.group(3)))
    return out


_WILDCARD = ("0.0.0.0", "::", "")


def split_bind(where):
    """(address, port) of a 'host:port' bind ('[v6]:port' too); port 5060 when none is shown."""
    host, _, port = where.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 5060


def _overlap(a, b):
    """Whether two binds hold the same socket: same port, and the same address or a wildcard on either
    side ('0.0.0.0:5060' takes 5060 on every IPv4 address, as VICIdial's usual 'bindaddr=0.0.0.0' does)."""
    (ha, pa), (hb, pb) = split_bind(a), split_bind(b)
    if pa != pb:
        return False
    if ha == hb:
        return True
    if ha in _WILDCARD:
        return ha == "::" or ":" not in hb  # '::' is dual-stack on Linux by default
    if hb in _WILDCARD:
        return hb == "::" or ":" not in ha
    return False


def transport_problems(sip_binds, pjsip_transports, needed):
    """Collisions between chan_sip and PJSIP binds, and PJSIP transports the carriers need but lack."""
    problems = []
    taken = []
    for name, where in sip_binds:
        taken.append((name.split("-")[1] if name.split("-")[1] != "tls" else "tcp", where, name))
    for name, proto, where in pjsip_transports:
        kind = "tcp" if proto in ("tcp", "tls", "ws", "wss") else "udp"
        for other_kind, other, holder in taken:
            if other_kind == kind and _overlap(where, other):
                problems.append("PJSIP transport %s binds %s %s, which chan_sip (%s, %s) already holds"
                                % (name, proto, where, holder, other))
                break
    names = {name for name, _, _ in pjsip_transports}
    for name in sorted(set(needed) - names):
        problems.append("PJSIP transport %s, which a carrier needs, is not defined on this Asterisk" % name)
    return problems


def plan_transport_problems(sip_binds, pjsip_transports, plan, transport_prefix="transport-"):
    """transport_problems for a render plan: the PJSIP transports its carriers name must exist."""
    needed = [transport_prefix + ((c.get("reg") or {}).get("transport") or "udp")
              for c in plan if c["driver"] == "pjsip"]
    return transport_problems([tuple(x) for x in sip_binds or []], [tuple(x) for x in pjsip_transports or []],
                              needed)
