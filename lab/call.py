#!/usr/bin/env python3
"""Place ONE real inbound carrier call through the lab's Kamailio to a dialer, with SIPp.

    python3 lab/call.py --dialer lab-a16-01 --account d1sip [--hold SECONDS] [--timeout S]

SIPp (scenario lab/sipp/inbound_call.xml) sends an INVITE for sip:<account>@<carrier> from a
loopback address (default 127.0.0.31, a random free port); Kamailio routes it with
lookup("location") to the contact the dialer registered; the dialer's `trunkinbound` context
answers. The call is held for --hold seconds (or until the dialer hangs up: the lab's
trunkinbound plays a beep, waits 2 s and hangs up, so a call lives about 2.5 s at most) and
ended with BYE.

Proof that the call reached the RIGHT dialer (all read after the call, from offsets taken
before it):
  * the dialer's Asterisk logged `vicireg-lab inbound DID <account> on <channel>` (the Verbose
    of lab/templates/dialer/extensions.conf, in <root>/var/log/asterisk/messages), and no
    other dialer logged that DID meanwhile;
  * while SIPp runs, `core show channels concise` on the dialer is polled and the channel
    with context trunkinbound, exten <account> and caller id <the per-call token> is looked
    for (a call that is hung up at once may be too short to be seen; the log line decides);
  * Kamailio's log line `INVITE for <account> from <our ip:port> relayed to <contact>` names
    the dialer's address.

Forking: Kamailio's registrar keeps every binding of an account until it expires, and
lookup("location") + t_relay() forks the INVITE to all of them. A PJSIP registration with
`line=yes` gets a new ;line= contact each time it is re-created, so after a few site.yml runs an
account may have several bindings: the call is then answered several times on the same dialer
(CallResult.forks > 1, a WARNING in the summary). SIPp continues the first dialog it ACKed; the
other forks end when the dialer's dialplan hangs them up (their BYE is answered while SIPp runs).

Exit codes: 0 answered and proven on the dialer; 2 usage / lab not running / SIPp missing;
3 the account is not registered at Kamailio (404 from the carrier); 4 another final failure
answer (e.g. 480, 486, 503); 5 no answer / timeout / no response; 6 answered but not proven
on that dialer (wrong dialer, no channel); 7 SIPp failed in an unexpected way.

As a library (tests): `call = start_call("lab-a16-01", "d1sip", hold=2)` starts SIPp and
returns at once (`call.proc` is the SIPp Popen); `result = call.wait()` returns a CallResult
(`result.ok`, `.answered`, `.setup_ms`, `.reason`, `.summary()`). `place_call(...)` does both.
`--background` runs the same call in a detached process and prints its pid and the JSON result
file it will write.

Python 3 standard library only; runs as root on the controller (chroot into the dialer roots).
"""
import argparse
import datetime
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

FACTS = "/var/lib/vicireg-lab/lab-facts.json"
KAMAILIO_LOG = "/var/lib/vicireg-lab/kamailio/kamailio.log"
HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, "sipp", "inbound_call.xml")
DEFAULT_LOCAL_IP = "127.0.0.31"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
ASTERISK_LOG = "var/log/asterisk/messages"

EXIT_OK, EXIT_USAGE, EXIT_NOT_REGISTERED, EXIT_REJECTED = 0, 2, 3, 4
EXIT_NO_ANSWER, EXIT_NOT_PROVEN, EXIT_SIPP = 5, 6, 7


class CallError(Exception):
    """A call that cannot even be started (usage, lab down, SIPp missing)."""


# ----------------------------------------------------------------------------- lab facts
def load_facts(path=FACTS):
    if not os.path.exists(path):
        raise CallError("the lab is not running: %s is missing (run `make lab`)" % path)
    with open(path) as handle:
        data = json.load(handle)
    if not data.get("running"):
        raise CallError("the lab is not running (lab-facts.json says running: false)")
    return data


def find_dialer(data, name):
    for item in data["dialers"]:
        if item["name"] == name:
            return item
    raise CallError("no dialer %r in the lab (have: %s)"
                    % (name, ", ".join(d["name"] for d in data["dialers"])))


def asterisk_rx(root, command, timeout=15):
    """Run one Asterisk CLI command inside a dialer root; its output (raises on failure)."""
    proc = subprocess.run(["chroot", root, "asterisk", "-rx", command], capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise CallError("`asterisk -rx %r` in %s failed (rc %d): %s"
                        % (command, root, proc.returncode, (proc.stderr or proc.stdout).strip()))
    return proc.stdout


def registration_state(dialer, account, carrier=None):
    """The dialer's own view of its registration of `account` at the SIP carrier.

    Returns (driver, state) e.g. ("chan_sip", "Registered"), ("pjsip", "Rejected"), or
    (None, None) when no registration for that user exists on the dialer. `carrier` is the SIP
    carrier's address (default: the lab's, from lab-facts.json).
    """
    root = dialer["root"]
    carrier = carrier or load_facts()["sip_carrier"]["address"]
    if dialer.get("chan_sip"):
        out = asterisk_rx(root, "sip show registry")
        shown = account if len(account) <= 12 else account[:12]  # chan_sip cuts the column
        for line in out.splitlines():
            cols = line.split()
            if len(cols) >= 5 and cols[0].split(":")[0] == carrier and cols[2] == shown:
                # the state column may hold two words (e.g. "Auth. Sent", "No Authentication")
                words = cols[4:]
                state = words[0]
                if len(words) > 1 and not re.match(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun|\d)", words[1]):
                    state = "%s %s" % (words[0], words[1])
                return "chan_sip", state
    out = asterisk_rx(root, "pjsip show registrations")
    names = re.findall(r"^\s*(\S+?)/sip:\S+\s+\S+\s+(\S+)", out, re.M)
    for name, status in names:
        detail = asterisk_rx(root, "pjsip show registration %s" % name)
        match = re.search(r"^\s*client_uri\s*:\s*sips?:([^@\s]+)@", detail, re.M)
        contact = re.search(r"^\s*contact_user\s*:\s*(\S+)", detail, re.M)
        users = {match.group(1) if match else None, contact.group(1) if contact else None}
        if account in users:
            return "pjsip", status
    return None, None


# ----------------------------------------------------------------------------- helpers
def _check_local_ip(address):
    parts = address.split(".")
    if len(parts) != 4 or parts[0] != "127" or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise CallError("--local-ip must be a loopback address 127.x.y.z, not %r" % address)
    if parts[1:3] == ["0", "0"] and 200 <= int(parts[3]) <= 254:
        raise CallError("127.0.0.200-254 are reserved for outside test peers; use another --local-ip")


def _free_udp_port(address, span=1):
    """A UDP port on `address` where `span` consecutive ports are free (bind test)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
            port = probe.getsockname()[1]
        if span > 1:
            port = (port // 2) * 2  # RTP wants an even port
        if port + span > 65535:
            continue
        socks = []
        try:
            for offset in range(span):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((address, port + offset))
            return port
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise CallError("no free UDP port on %s" % address)


def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path, offset):
    """What was appended to `path` since `offset` (the whole file if it was rotated/truncated)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(offset if offset <= size else 0)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ----------------------------------------------------------------------------- SIPp trace
# "----- 2026-11-26 11:04:42.807524\nUDP message sent (632 bytes):\n\n" (SIPp 3.6) or
# "----- 2026-11-26\t11:04:42.807524\t1795691082.807524\nUDP message received [332] bytes :\n\n"
_TRACE_HEAD = re.compile(
    r"^-{20,} (\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d(?:\.\d+)?)[^\n]*\n"
    r"(\w+) message (sent|received)[^\n]*\n\n", re.M)


def parse_trace(text):
    """SIPp's -trace_msg file -> list of (epoch, 'sent'|'received', first line, message)."""
    heads = list(_TRACE_HEAD.finditer(text))
    out = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[head.end():end].strip("\r\n")
        first = body.splitlines()[0].strip() if body else ""
        stamp = datetime.datetime.strptime("%s %s" % (head.group(1), head.group(2)),
                                           "%Y-%m-%d %H:%M:%S.%f").timestamp()
        out.append((stamp, head.group(4), first, body))
    return out


def _header(message, name):
    match = re.search(r"^%s\s*:\s*(.*)$" % re.escape(name), message, re.M | re.I)
    return match.group(1).strip() if match else ""


def _cseq_method(message):
    cseq = _header(message, "CSeq").split()
    return cseq[1].upper() if len(cseq) > 1 else ""


# ----------------------------------------------------------------------------- result
class CallResult:
    def __init__(self, dialer, account):
        self.dialer = dialer
        self.account = account
        self.answered = False
        self.setup_ms = None        # INVITE sent -> 200 OK received, from SIPp's trace
        self.final_code = None      # final answer to the INVITE (200, 404, ...), None: none
        self.final_text = ""
        self.final_server = ""      # Server/User-Agent of that answer
        self.provisional = []       # 100, 180, ... received
        self.hangup_by = None       # "caller" (our BYE) / "dialer" (its BYE)
        self.duration_s = None      # answered -> BYE
        self.channel = None         # the dialer's channel (from its log or the channel poll)
        self.channel_seen_live = False
        self.channels = []          # every channel the dialer logged for this DID meanwhile
        self.channels_seen_live = []  # channels seen in `core show channels concise` (caller id)
        self.forks = 0              # 200 OKs with distinct To-tags (Kamailio forks to N contacts)
        self.dialer_log = []        # the dialer's `vicireg-lab inbound DID` lines of this call
        self.other_dialers = {}     # other dialer -> its lines for this DID during the call
        self.kamailio = []          # Kamailio's INVITE lines of this call
        self.registration = (None, None)  # the dialer's view of the account, when looked at
        self.sipp_rc = None
        self.ok = False
        self.exit_code = EXIT_SIPP
        self.reason = ""
        self.workdir = None
        self.caller = None
        self.hold = None

    def summary(self):
        setup = "%d ms" % round(self.setup_ms) if self.setup_ms is not None else "-"
        line = "dialer=%s account=%s answered=%s setup=%s" % (
            self.dialer, self.account, "yes" if self.answered else "no", setup)
        if self.answered:
            line += " channel=%s hangup_by=%s duration=%.1fs" % (
                self.channel or "?", self.hangup_by or "?", self.duration_s or 0.0)
            if self.hangup_by == "dialer" and self.hold and (self.duration_s or 0) < self.hold:
                line += " (the dialer hung up before --hold %gs: trunkinbound ends after beep + 2 s)" \
                    % self.hold
            if self.forks > 1:
                line += " WARNING: forked, %d answers (%d channels on the dialer: %s)" % (
                    self.forks, len(self.channels), " ".join(self.channels))
        if self.final_code is not None and not self.answered:
            line += " final=%d %s" % (self.final_code, self.final_text)
        if not self.ok:
            line += " FAILED: %s" % self.reason
            if self.workdir and self.workdir not in self.reason:
                line += " (SIPp trace kept in %s)" % self.workdir
        return line

    def discard(self):
        """Remove the SIPp work dir (trace) that a failed call keeps for inspection."""
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def as_dict(self):
        return {k: v for k, v in self.__dict__.items()}


# ----------------------------------------------------------------------------- the call
class Call:
    """One SIPp call in progress; `proc` is the SIPp Popen, `wait()` returns a CallResult."""

    def __init__(self, dialer, account, hold=0.0, timeout=10.0, local_ip=DEFAULT_LOCAL_IP,
                 facts=None, keep=False, check_registration=True):
        self.facts = facts or load_facts()
        self.dialer = find_dialer(self.facts, dialer)
        self.account = account
        self.hold = float(hold)
        self.timeout = float(timeout)
        self.local_ip = local_ip
        self.keep = keep
        self.check_registration = check_registration
        _check_local_ip(local_ip)
        if self.hold < 0 or self.timeout <= 0:
            raise CallError("--hold must be >= 0 and --timeout > 0")
        if not os.path.exists(SIPP):
            raise CallError("SIPp is not installed (%s); the lab installs sip-tester" % SIPP)
        self.carrier = self.facts["sip_carrier"]
        self.result = CallResult(dialer, account)
        self.result.hold = self.hold
        self.proc = None
        self._stop = threading.Event()
        self._poller = None
        self._live = []

    # -- start --------------------------------------------------------------------------
    def start(self):
        token = "vicireg%s" % secrets.token_hex(4)
        self.result.caller = token
        work = tempfile.mkdtemp(prefix="vicireg-call-")
        self.result.workdir = work
        with open(SCENARIO) as handle:
            scenario = handle.read()
        for key, value in (("@CALLER@", token), ("@BRANCH@", "z9hG4bK-%s" % token),
                           ("@SETUP_MS@", str(int(self.timeout * 1000))),
                           ("@HOLD_MS@", str(max(1, int(self.hold * 1000))))):
            scenario = scenario.replace(key, value)
        self.scenario = os.path.join(work, "inbound_call.xml")
        with open(self.scenario, "w") as handle:
            handle.write(scenario)
        self.sip_port = _free_udp_port(self.local_ip)
        self.media_port = _free_udp_port(self.local_ip, span=4)
        # offsets of every log that must show this call, taken BEFORE the INVITE
        self.log_offsets = {d["name"]: _file_size(os.path.join(d["root"], ASTERISK_LOG))
                            for d in self.facts["dialers"]}
        self.kamailio_offset = _file_size(KAMAILIO_LOG)
        guard = int(self.timeout + self.hold + 15)
        self.trace = os.path.join(work, "messages.log")
        cmd = [SIPP, "%s:%d" % (self.carrier["address"], self.carrier["port"]),
               "-sf", self.scenario, "-s", self.account, "-m", "1", "-l", "1",
               "-i", self.local_ip, "-bind_local", "-p", str(self.sip_port),
               "-mp", str(self.media_port), "-t", "u1", "-nostdin",
               "-trace_msg", "-message_file", self.trace,
               "-trace_err", "-error_file", os.path.join(work, "errors.log"),
               "-timeout", "%ds" % guard, "-timeout_error"]
        self.cmd = cmd
        self._screen = open(os.path.join(work, "screen.log"), "w")
        self.t_start = time.time()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._screen,
                                     stderr=subprocess.STDOUT, cwd=work)
        self._poller = threading.Thread(target=self._poll_channels, daemon=True)
        self._poller.start()
        return self

    def _poll_channels(self):
        """While SIPp runs: the dialer's live channels in trunkinbound for our caller id."""
        root = self.dialer["root"]
        while not self._stop.is_set() and self.proc.poll() is None:
            try:
                out = asterisk_rx(root, "core show channels concise", timeout=5)
            except (CallError, subprocess.TimeoutExpired):
                out = ""
            for line in out.splitlines():
                cols = line.split("!")
                if len(cols) > 7 and cols[1] == "trunkinbound" and cols[7] == self.result.caller:
                    self._live.append(cols)
            self._stop.wait(0.2)

    def poll(self):
        return self.proc.poll() if self.proc else None

    # -- finish -------------------------------------------------------------------------
    def wait(self, timeout=None):
        limit = timeout if timeout is not None else self.timeout + self.hold + 30
        try:
            self.result.sipp_rc = self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own SIPp, by its Popen
            self.proc.wait(5)
            self.result.sipp_rc = None
        self._stop.set()
        self._poller.join(10)
        self._screen.close()
        time.sleep(0.3)  # let Asterisk/Kamailio flush the last log lines of the call
        self._evaluate()
        if self.result.ok and not self.keep:
            shutil.rmtree(self.result.workdir, ignore_errors=True)
            self.result.workdir = None
        return self.result

    def _evaluate(self):
        res = self.result
        trace = _read_from(self.trace, 0)
        msgs = parse_trace(trace)
        t_invite = t_answer = t_bye = None
        tags = []
        for stamp, direction, first, body in msgs:
            if direction == "sent" and first.startswith("INVITE ") and t_invite is None:
                t_invite = stamp
            if direction == "received" and first.startswith("SIP/2.0 ") \
                    and _cseq_method(body) == "INVITE":
                code = int(first.split()[1])
                if code < 200:
                    if code not in res.provisional:
                        res.provisional.append(code)
                elif res.final_code is None:
                    res.final_code = code
                    res.final_text = first.split(None, 2)[2] if len(first.split()) > 2 else ""
                    res.final_server = _header(body, "Server") or _header(body, "User-Agent")
                    if code == 200:
                        t_answer = stamp
                if code == 200:
                    tag = re.search(r";\s*tag=([^;>\s]+)", _header(body, "To"))
                    if tag and tag.group(1) not in tags:
                        tags.append(tag.group(1))
            if first.startswith("BYE ") and t_bye is None:
                t_bye = stamp
                res.hangup_by = "caller" if direction == "sent" else "dialer"
        res.answered = res.final_code == 200
        res.forks = len(tags)
        if res.answered and t_invite is not None:
            res.setup_ms = (t_answer - t_invite) * 1000.0
        if res.answered and t_bye is not None:
            res.duration_s = t_bye - t_answer

        # Kamailio: which contact it relayed our INVITE to
        ours = "from %s:%d" % (self.local_ip, self.sip_port)
        for line in _read_from(KAMAILIO_LOG, self.kamailio_offset).splitlines():
            if "INVITE" in line and ours in line:
                res.kamailio.append(line.strip())

        # the dialers' logs: our DID on the target, and on no other dialer
        pattern = re.compile(r"vicireg-lab inbound DID %s on (\S+)" % re.escape(self.account))
        for d in self.facts["dialers"]:
            text = _read_from(os.path.join(d["root"], ASTERISK_LOG), self.log_offsets[d["name"]])
            lines = [l.strip() for l in text.splitlines() if pattern.search(l)]
            if d["name"] == self.dialer["name"]:
                res.dialer_log = lines
            elif lines:
                res.other_dialers[d["name"]] = lines
        for line in res.dialer_log:
            if "app_verbose" in line or "Executing" not in line:
                chan = pattern.search(line).group(1)
                if chan not in res.channels:
                    res.channels.append(chan)
        live = []
        for cols in self._live:
            if cols[0] not in live:
                live.append(cols[0])
        res.channels_seen_live = live
        res.channel_seen_live = bool(live)
        res.channel = (live or res.channels or [None])[0]

        self._verdict(trace)

    def _verdict(self, trace):
        res = self.result
        d = self.dialer
        carrier_sw = "vicireg-lab-carrier"
        if res.answered:
            addr = d["address"]
            relayed_to = " ".join(res.kamailio)
            if not res.dialer_log:
                return self._fail(EXIT_NOT_PROVEN, "answered (by %s), but %s's Asterisk log shows no "
                                  "`vicireg-lab inbound DID %s` line for this call; Kamailio: %s"
                                  % (res.final_server or "?", d["name"], res.account,
                                     relayed_to or "no INVITE line"))
            if res.other_dialers:
                return self._fail(EXIT_NOT_PROVEN, "the call also reached %s"
                                  % ", ".join(sorted(res.other_dialers)))
            if res.kamailio and ("@%s:" % addr) not in relayed_to and ("@%s;" % addr) not in relayed_to \
                    and ("sip:%s" % addr) not in relayed_to:
                return self._fail(EXIT_NOT_PROVEN, "Kamailio relayed the INVITE elsewhere: %s"
                                  % relayed_to)
            if res.hangup_by is None:
                return self._fail(EXIT_SIPP, "answered, but the call did not end with a BYE "
                                  "(SIPp rc %s; see %s)" % (res.sipp_rc, res.workdir))
            if res.sipp_rc != 0:
                return self._fail(EXIT_SIPP, "answered, but SIPp ended with rc %s (see %s)"
                                  % (res.sipp_rc, res.workdir))
            res.ok, res.exit_code, res.reason = True, EXIT_OK, "answered"
            return None
        if res.final_code is not None:
            from_carrier = carrier_sw in res.final_server
            if res.final_code in (404, 480) and from_carrier:
                res.registration = self._registration()
                return self._fail(EXIT_NOT_REGISTERED, "%s is not registered at Kamailio "
                                  "(%d %s from the carrier)%s" % (
                                      res.account, res.final_code, res.final_text,
                                      self._registration_text()))
            if res.final_code == 408:
                return self._fail(EXIT_NO_ANSWER, "no answer: 408 %s from %s (the dialer did not "
                                  "respond)" % (res.final_text, res.final_server or "?"))
            if res.final_code == 487:
                return self._fail(EXIT_NO_ANSWER, "no answer within %gs (CANCELled, 487)"
                                  % self.timeout)
            return self._fail(EXIT_REJECTED, "%d %s from %s" % (
                res.final_code, res.final_text, res.final_server or "?"))
        if " CANCEL " in trace or "\nCANCEL " in trace:
            return self._fail(EXIT_NO_ANSWER, "no answer within %gs (CANCEL sent)%s" % (
                self.timeout, " after %s" % res.provisional if res.provisional else ""))
        if not any(m for m in parse_trace(trace) if m[1] == "received"):
            return self._fail(EXIT_NO_ANSWER, "no response at all from Kamailio at %s:%d within "
                              "the timeout (SIPp rc %s)" % (self.carrier["address"],
                                                            self.carrier["port"], res.sipp_rc))
        return self._fail(EXIT_NO_ANSWER, "timeout: no final answer (got %s; SIPp rc %s)"
                          % (res.provisional or "nothing", res.sipp_rc))

    def _registration(self):
        if not self.check_registration:
            return (None, None)
        try:
            return registration_state(self.dialer, self.account)
        except (CallError, subprocess.TimeoutExpired):
            return (None, None)

    def _registration_text(self):
        driver, state = self.result.registration
        if not self.check_registration:
            return ""
        if driver is None:
            return "; %s has no registration for %s" % (self.dialer["name"], self.account)
        return "; %s's %s registration of %s: %s" % (self.dialer["name"], driver,
                                                     self.account, state)

    def _fail(self, code, reason):
        self.result.ok = False
        self.result.exit_code = code
        self.result.reason = reason


def start_call(dialer, account, hold=0.0, timeout=10.0, local_ip=DEFAULT_LOCAL_IP, **kwargs):
    """Start one call and return at once: a Call (`.proc` = SIPp Popen, `.wait()` -> CallResult)."""
    return Call(dialer, account, hold=hold, timeout=timeout, local_ip=local_ip, **kwargs).start()


def place_call(dialer, account, hold=0.0, timeout=10.0, local_ip=DEFAULT_LOCAL_IP, **kwargs):
    """Place one call and wait for its end: a CallResult."""
    return start_call(dialer, account, hold=hold, timeout=timeout, local_ip=local_ip,
                      **kwargs).wait()


# ----------------------------------------------------------------------------- CLI
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialer", required=True, help="lab dialer name, e.g. lab-a16-01")
    parser.add_argument("--account", required=True, help="carrier account (R-URI user), e.g. d1sip")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds to keep the answered call up before BYE (default 0)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the answer (default 10)")
    parser.add_argument("--local-ip", default=DEFAULT_LOCAL_IP,
                        help="loopback source address for SIPp (default %s)" % DEFAULT_LOCAL_IP)
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE")
    parser.add_argument("--keep", action="store_true", help="keep SIPp's work dir (trace) on success")
    parser.add_argument("--background", action="store_true",
                        help="run the call in a detached process; print its pid and result file")
    args = parser.parse_args(argv)

    if args.background:
        out = args.json or os.path.join(tempfile.mkdtemp(prefix="vicireg-call-bg-"), "result.json")
        child = [sys.executable, os.path.abspath(__file__), "--dialer", args.dialer,
                 "--account", args.account, "--hold", str(args.hold), "--timeout",
                 str(args.timeout), "--local-ip", args.local_ip, "--json", out]
        if args.keep:
            child.append("--keep")
        proc = subprocess.Popen(child, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        print("background call pid=%d result=%s" % (proc.pid, out))
        return EXIT_OK

    try:
        result = place_call(args.dialer, args.account, hold=args.hold, timeout=args.timeout,
                            local_ip=args.local_ip, keep=args.keep)
    except CallError as exc:
        print("call.py: error: %s" % exc, file=sys.stderr)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump({"ok": False, "exit_code": EXIT_USAGE, "reason": str(exc)}, handle)
        return EXIT_USAGE
    print(result.summary())
    if args.json:
        with open(args.json + ".tmp", "w") as handle:
            json.dump(result.as_dict(), handle, indent=1, default=str)
        os.replace(args.json + ".tmp", args.json)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
