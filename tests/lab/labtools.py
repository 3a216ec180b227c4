"""Helpers for tests against the running lab: its facts, AMI, and a second Asterisk in a lab root."""
import os
import socket
import subprocess
import sys
import time

FACTS = "/var/lib/vicireg-lab/lab-facts.json"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "lab"))

import call  # noqa: E402  lab/call.py: the lab's own facts loader and SIPp calls


def facts():
    """The running lab's facts; a clear failure (never a skip) when the lab is not up."""
    try:
        return call.load_facts(FACTS)
    except call.CallError as exc:
        raise AssertionError(str(exc))


def dialer(data, major):
    for d in data["dialers"]:
        if d["asterisk_major"] == major:
            return d
    raise AssertionError("the lab has no Asterisk %d dialer" % major)


def wait_port(host, port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("nothing answered on %s:%d within %ss" % (host, port, timeout))


class AMI:
    """A minimal Asterisk Manager Interface client (login, one action, its events)."""

    def __init__(self, host, port, username, secret, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self._read_until(b"\r\n")  # banner
        reply = self.action("Login", Username=username, Secret=secret)
        assert reply[0].get("Response") == "Success", reply

    def _read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("AMI closed the connection")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(marker)
        return head.decode("utf-8", "replace")

    def _message(self):
        out = {}
        for line in self._read_until(b"\r\n\r\n").split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep:
                out[key] = value
        return out

    def action(self, name, complete=None, **fields):
        """Send an action; read messages until the response (and `complete` event, if given)."""
        action_id = "vicireg-%d" % int(time.time() * 1000)
        text = "Action: %s\r\nActionID: %s\r\n" % (name, action_id)
        text += "".join("%s: %s\r\n" % kv for kv in fields.items()) + "\r\n"
        self.sock.sendall(text.encode())
        messages = []
        while True:
            msg = self._message()
            if msg.get("ActionID") != action_id:
                continue
            messages.append(msg)
            if complete is None and "Response" in msg:
                return messages
            if complete is not None and (msg.get("Event") == complete
                                         or msg.get("EventList") == "Complete"):
                return messages
            if msg.get("Response") == "Error":
                return messages

    def close(self):
        try:
            self.action("Logoff")
        except (AssertionError, OSError):
            pass
        self.sock.close()


ORACLE_DIR = "/var/lib/vicireg-lab/oracle"
# Not a lab carrier's or dialer's address, nor in 127.0.0.200-254: an oracle shares nothing with
# the hosts the scenarios use (an Asterisk bound to a carrier's address once took its traffic).
ORACLE_ADDRESS = "127.0.0.12"


class OracleRoot:
    """A throw-away overlay of a cached lab root (its own upper layer, /proc and /dev), for a test's
    own Asterisk; `labctl.py down` unmounts it too if a test dies before its teardown."""

    def __init__(self, flavor="a16", name="diff"):
        import labctl  # lab/labctl.py: the lab's mount helpers

        self.labctl = labctl
        self.dir = os.path.join(ORACLE_DIR, name)
        self.lower = str(labctl.ROOTS_DIR / flavor)
        self.root = os.path.join(self.dir, "merged")

    def __enter__(self):
        from pathlib import Path

        self._remove()
        for sub in ("upper", "work", "merged"):
            os.makedirs(os.path.join(self.dir, sub))
        self.labctl.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s" % (
            self.lower, os.path.join(self.dir, "upper"), os.path.join(self.dir, "work")), self.root])
        self.labctl.mount_proc_dev(Path(self.root))
        return self

    def _remove(self):
        self.labctl.kill_pids(self.labctl.processes_rooted_under([self.dir]), "oracle processes")
        self.labctl.umount_all([self.dir], "the oracle root")
        self.labctl.safe_rmtree(self.labctl.Path(self.dir))

    def __exit__(self, *exc):
        self._remove()


class RootAsterisk:
    """A second, throw-away Asterisk started inside a root, with its own config and sockets."""

    def __init__(self, root, name, files):
        self.root = root
        self.base = "/tmp/vicireg-%s" % name
        self.files = files
        self.proc = None

    def _path(self, *parts):
        return os.path.join(self.root, self.base.lstrip("/"), *parts)

    def start(self):
        for sub in ("etc", "run", "log", "lib", "spool"):
            os.makedirs(self._path(sub), exist_ok=True)
        conf = dict(self.files)
        conf["asterisk.conf"] = (
            "[directories]\nastetcdir => {b}/etc\nastmoddir => /usr/lib/asterisk/modules\n"
            "astvarlibdir => /var/lib/asterisk\nastdbdir => {b}/lib\nastkeydir => /var/lib/asterisk\n"
            "astdatadir => /usr/share/asterisk\nastagidir => /usr/share/asterisk/agi-bin\n"
            "astspooldir => {b}/spool\nastrundir => {b}/run\nastlogdir => {b}/log\n"
            "[options]\nrunuser = root\nrungroup = root\n").format(b=self.base)
        for name, text in conf.items():
            with open(self._path("etc", name), "w") as handle:
                handle.write(text)
        self.proc = subprocess.Popen(
            ["chroot", self.root, "/usr/sbin/asterisk", "-f", "-C", self.base + "/etc/asterisk.conf"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def log(self):
        path = self._path("log", "messages")
        if os.path.exists(path):
            with open(path) as handle:
                return handle.read()
        return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


BIN = os.path.dirname(sys.executable)
ANSIBLE_ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0")
REPORT = os.path.join(ROOT, "reports", "registrations.json")


def run_playbook(*args, carriers=None, playbook="site.yml", timeout=300):
    """ansible-playbook as an operator runs it (args: --limit, --check ...), optionally with a carrier
    list as extra vars (a temp file outside the checkout, removed whatever happens).

    The result carries .seconds and .report (every row of registrations.json, or None)."""
    import json
    import tempfile

    extra = []
    path = None
    if carriers is not None:
        fd, path = tempfile.mkstemp(prefix="vicireg-test-vars-", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            json.dump({"carriers": carriers}, handle)
        extra = ["-e", "@" + path]
    start = time.time()
    try:
        out = subprocess.run([os.path.join(BIN, "ansible-playbook"), playbook] + extra + list(args), cwd=ROOT,
                             env=ANSIBLE_ENV, capture_output=True, text=True, timeout=timeout)
    finally:
        if path:
            os.remove(path)
    out.seconds = time.time() - start
    try:
        with open(REPORT) as handle:
            out.report = json.load(handle)
    except (OSError, ValueError):
        out.report = None
    return out


def run_on(dialer, carrier_list):
    """site.yml limited to one dialer with this carrier list; .rows: that dialer's report rows by carrier."""
    out = run_playbook("--limit", dialer["name"], carriers=carrier_list)
    out.rows = {r["carrier"]: r for r in out.report or [] if r["host"] == dialer["name"]}
    return out
