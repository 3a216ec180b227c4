#!/usr/bin/env python3
"""site.yml on a fleet of lab dialers (1, 5, 10, 20 by default), 10 carriers each, next to the naive
procedure it replaces, in one table.

For each fleet size N (the first N dialers of the lab, `--limit`), after a converging run that is not
measured, it prints:
  - the wall seconds of a changing run (every dialer's chan_sip-or-PJSIP carrier `bchg` gets the other
    of two contact users) and of a no-op run (the same vars again); a run counts only when it exits 0,
    every carrier's verdict in reports/registrations.json is registered/reachable, and the changing run
    changed every dialer (the no-op none); otherwise the figure says FAILED; the changing run goes as the
    role's defaults say (the canary, then batches of 25%), and once more with every dialer in one batch;
  - the seconds each added dialer costs (slope from the previous size), changing and no-op;
  - the controller's CPU seconds (user+sys) and peak RSS (the largest process) of the ansible-playbook
    process tree of each run (os.wait4: the playbook and every descendant it reaped);
  - the naive procedure for the same dialers (benchmarks/naive.yml: template the 7 registering
    carriers, restart Asterisk, wait --naive-wait seconds, grep the registries; the IP-authenticated
    peers are not in it), its wall seconds and the ratio naive / new (changing run);
  - the targets next to the figures: 20 dialers changing <= 15 s and no-op <= 8 s, 1 dialer changing
    <= 3.5 s and no-op <= 2 s, naive / new >= 5x; ok or MISSED.
Carriers per dialer: bchg (sip; chan_sip where the dialer has it), blong (sip, a long user), bauth (sip,
a separate auth user), biax (iax2), bpjsip (pjsip), bwiz (pjsip wizard, the long account again with
another contact user), bmain2 (pjsip, bchg's account again with another contact user), and three
IP-authenticated peers proven by qualify: bip1 (sip, Kamailio), bip2 (pjsip, Kamailio's second
address), bip3 (sip, the SRV target's port 5062).
Before each naive run the toolkit's carriers are removed from those dialers (site.yml, carriers: []),
after it the baseline's files are removed and `labctl.py up` (same number of dialers) checks the lab;
at the end site.yml puts the inventory's own carriers back. Progress goes to standard error.
The lab must be the benchmark's alone while it runs: a note names any other ansible-playbook, pytest or
molecule process seen meanwhile (its changes to the same dialers would make figures and verdicts wrong).

Usage (lab up with at least max(--sizes) dialers: `python3 lab/labctl.py up --hosts 20`; make bench):
  python3 benchmarks/bench_fleet.py [--sizes 1,5,10,20] [--naive-wait 60] [--skip-naive]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import labtools  # noqa: E402

PLAYBOOK = os.path.join(ROOT, ".venv", "bin", "ansible-playbook")
LABCTL = os.path.join(ROOT, "lab", "labctl.py")
REPORT = os.path.join(ROOT, "reports", "registrations.json")
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
           ANSIBLE_FORCE_COLOR="0")
CARRIERS = 10
OK_VERDICTS = ("registered", "reachable")
# size: (changing s, no-op s)
TIME_TARGETS = {1: (3.5, 2.0), 20: (15.0, 8.0)}
RATIO_TARGET = 5.0
# The rollout without canary or batches: what the same change costs when every dialer goes at once.
ONE_BATCH = {"vicireg_carriers_canary": 0, "vicireg_carriers_batch": "100%"}
# The registering carriers: name, protocol, account kind ('main': sip where the dialer has chan_sip,
# else pjsip), contact user ('' = the account's user, None = bchg's alternating one), pjsip_style.
REGISTERING = (
    ("bchg", "sip", "main", None, None),
    ("blong", "sip", "long", "", None),
    ("bauth", "sip", "authuser", "", None),
    ("biax", "iax2", "iax2", "", None),
    ("bpjsip", "pjsip", "pjsip", "8%02d1", None),
    ("bwiz", "pjsip", "long", "8%02d2", "wizard"),
    ("bmain2", "pjsip", "main", "8%02d3", None),
)


def log(text):
    print("bench_fleet: " + text, file=sys.stderr, flush=True)


class Run:
    """One ansible-playbook run: wall and CPU seconds, peak RSS (MiB), exit code, output, validity."""

    def __init__(self, wall, rc, cpu, rss, out):
        self.wall, self.rc, self.cpu, self.rss, self.out = wall, rc, cpu, rss, out
        self.problems = [] if rc == 0 else ["exit code %d" % rc]

    @property
    def ok(self):
        return not self.problems


def account(d, kind):
    if kind == "main":
        kind = "sip" if d["chan_sip"] else "pjsip"
    return d["accounts"][kind]


def bchg_contact(d, phase):
    """bchg's contact user: one of two per dialer, phase 0 or 1."""
    return "7%02d%d" % (d["index"], 1 + phase)


def registering(facts, d, phase):
    """[(name, protocol, account, contact user, pjsip_style, registration string)] of dialer d."""
    kam, iax, realm = facts["sip_carrier"]["address"], facts["iax_carrier"]["address"], facts["sip_carrier"]["realm"]
    out = []
    for name, protocol, kind, contact, style in REGISTERING:
        acc = account(d, kind)
        if contact is None:
            contact = bchg_contact(d, phase)
        contact = contact % d["index"] if "%" in contact else contact or acc["username"]
        if kind == "iax2":
            string = "%s:%s@%s" % (acc["username"], acc["password"], iax)
        elif kind == "authuser":
            string = "%s@%s:%s:%s@%s:5060/%s" % (acc["username"], realm, acc["password"], acc["authuser"], kam, contact)
        else:
            string = "%s:%s@%s:5060/%s" % (acc["username"], acc["password"], kam, contact)
        out.append((name, protocol, acc, contact, style, string))
    return out


def fleet_carriers(facts, d, phase):
    """The dialer's 10 carriers as the inventory would list them."""
    sc = facts["sip_carrier"]
    carriers = []
    for name, protocol, _, _, style, string in registering(facts, d, phase):
        carrier = {"name": name, "protocol": protocol, "registration": string}
        if style:
            carrier["pjsip_style"] = style
        carriers.append(carrier)
    carriers += [
        {"name": "bip1", "protocol": "sip", "host": sc["address"], "port": 5060},
        {"name": "bip2", "protocol": "pjsip", "host": sc["second_address"], "port": 5060},
        {"name": "bip3", "protocol": "sip", "host": sc["srv_address"], "port": int(sc["srv_port"])},
    ]
    assert len(carriers) == CARRIERS
    return carriers


def naive_carriers(facts, d, phase):
    """The baseline's config of dialer d (its registering carriers) and the registry lines it greps for."""
    kam, realm = facts["sip_carrier"]["address"], facts["sip_carrier"]["realm"]
    entries, checks = [], []
    for name, protocol, acc, contact, _, string in registering(facts, d, phase):
        driver = "iax2" if protocol == "iax2" else "sip" if protocol == "sip" and d["chan_sip"] else "pjsip"
        user = acc["username"]
        domain = realm if acc["kind"] == "authuser" else None
        if driver == "pjsip":
            entries.append({"name": name, "driver": driver, "user": user, "secret": acc["password"],
                            "authuser": acc.get("authuser"), "domain": domain, "host": kam, "port": 5060,
                            "contact": contact})
            checks.append({"name": name, "command": "pjsip show registrations",
                           "grep": r"^\s*naive-%s/\S+\s+\S+\s+Registered" % re.escape(name)})
        elif driver == "sip":
            entries.append({"name": name, "driver": driver, "registration": string})
            shown = ("%s@%s" % (user, domain) if domain else user)[:12]  # chan_sip's 12-character column
            checks.append({"name": name, "command": "sip show registry",
                           "grep": r"\s%s\s+\d+\s+Registered" % re.escape(shown)})
        else:
            entries.append({"name": name, "driver": driver, "registration": string})
            checks.append({"name": name, "command": "iax2 show registry",
                           "grep": r"\s%s\s+\S+\s+\d+\s+Registered" % re.escape(user[:10])})
    return entries, checks


class Watch(threading.Thread):
    """Notes every ansible-playbook or pytest process this benchmark did not start: the lab must be the
    benchmark's alone (another run changing the same dialers makes its figures, and its verdicts, wrong)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen, self.stop = {}, threading.Event()

    def run(self):
        while not self.stop.wait(1.0):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                self._look(pid)

    @staticmethod
    def _parent(pid):
        try:
            with open("/proc/%s/stat" % pid) as handle:
                return int(handle.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return 0

    def _look(self, pid):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                text = handle.read().decode("utf-8", "replace").replace("\0", " ").strip()
        except OSError:
            return
        lab_user = (("ansible-playbook" in text and "--syntax-check" not in text) or "molecule" in text
                    or ("pytest" in text and "tests/unit" not in text))
        if not lab_user:
            return
        # Ours: a descendant of this process (Ansible's workers call setsid, so sessions do not tell).
        ancestor = int(pid)
        while ancestor > 1 and ancestor != os.getpid():
            ancestor = self._parent(ancestor)
        if ancestor != os.getpid():
            self.seen.setdefault(int(pid), text[:100])


WATCH = Watch()


def run_playbook(playbook, names, data, timeout=900):
    """ansible-playbook limited to names, data as extra vars (a 0600 temp file, removed afterwards)."""
    fd, path = tempfile.mkstemp(prefix="vicireg-bench-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    try:
        with tempfile.TemporaryFile(mode="w+") as output:
            start = time.monotonic()
            proc = subprocess.Popen([PLAYBOOK, playbook, "--limit", ",".join(names), "-e", "@" + path], cwd=ROOT,
                                    env=ENV, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
            timer.start()
            try:
                # wait4: this process's usage plus that of every descendant it reaped (Ansible's workers,
                # their ssh clients); ru_maxrss is the largest of them, in KiB.
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            wall = time.monotonic() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            output.seek(0)
            text = output.read()
    finally:
        os.remove(path)
    return Run(wall, proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, text)


def keep_output(run, label):
    """A failed run's output in a file (secrets are masked by the role; naive.yml logs none): its path."""
    fd, path = tempfile.mkstemp(prefix="vicireg-bench-%s-" % re.sub(r"\W+", "-", label), suffix=".log")
    with os.fdopen(fd, "w") as handle:
        handle.write(run.out)
    return path


def report_problems(names):
    """Every carrier of these dialers that is not ok in reports/registrations.json (or missing from it)."""
    try:
        with open(REPORT) as handle:
            rows = json.load(handle)
    except (OSError, ValueError) as exc:
        return ["no report (%s)" % exc]
    problems = []
    for name in names:
        mine = [r for r in rows if r["host"] == name]
        if len(mine) != CARRIERS:
            problems.append("%s: %d carriers in the report, not %d" % (name, len(mine), CARRIERS))
        problems += ["%s/%s: %s, %s" % (name, r["carrier"], r["verdict"], r["cause"] or r["state"])
                     for r in mine if r["verdict"] not in OK_VERDICTS]
    return problems


def toolkit_files(d):
    """The toolkit's files on dialer d (read from its lab root), backups left out: {name: text}."""
    conf = os.path.join(d["root"], "etc", "asterisk")
    out = {}
    for name in sorted(os.listdir(conf)):
        if name.startswith("vicireg-") and name.endswith(".conf"):
            with open(os.path.join(conf, name)) as handle:
                out[name] = handle.read()
    return out


def toolkit_run(facts, dialers, phase, expect=None, extra=None):
    """site.yml with the fleet's carriers; expect 'change' (every dialer's files changed, bchg's new contact
    user in them) or 'noop' (no file changed), judged on the dialers' files, not on the run's output."""
    names = [d["name"] for d in dialers]
    data = {"bench_carriers": {d["name"]: fleet_carriers(facts, d, phase[d["name"]]) for d in dialers},
            "carriers": "{{ bench_carriers[inventory_hostname] }}"}
    data.update(extra or {})
    before = {d["name"]: toolkit_files(d) for d in dialers}
    run = run_playbook("site.yml", names, data)
    run.problems += report_problems(names)
    after = {d["name"]: toolkit_files(d) for d in dialers}
    changed = [d["name"] for d in dialers if after[d["name"]] != before[d["name"]]
               and re.search(r"(/|contact_user=)%s\b" % bchg_contact(d, phase[d["name"]]),
                             "".join(after[d["name"]].values()))]
    untouched = [name for name in names if after[name] == before[name]]
    if expect == "change" and len(changed) != len(names):
        run.problems.append("bchg changed on %d of %d dialers" % (len(changed), len(names)))
    if expect == "noop" and len(untouched) != len(names):
        run.problems.append("files changed on %d of %d dialers" % (len(names) - len(untouched), len(names)))
    return run


def measure_toolkit(facts, dialers, phase):
    """(changing run, no-op run) on these dialers, after a converging run (not measured)."""
    for d in dialers:
        phase.setdefault(d["name"], 0)
    log("%d dialer(s): converging run (not measured)" % len(dialers))
    converge = toolkit_run(facts, dialers, phase)
    if not converge.ok:
        converge.problems.insert(0, "converging run failed")
        return converge, converge
    for d in dialers:
        phase[d["name"]] ^= 1
    log("%d dialer(s): changing run" % len(dialers))
    changing = toolkit_run(facts, dialers, phase, expect="change")
    log("%d dialer(s): no-op run" % len(dialers))
    noop = toolkit_run(facts, dialers, phase, expect="noop")
    for d in dialers:
        phase[d["name"]] ^= 1
    log("%d dialer(s): changing run, every dialer in one batch (no canary)" % len(dialers))
    at_once = toolkit_run(facts, dialers, phase, expect="change", extra=ONE_BATCH)
    return changing, noop, at_once


def labctl(*args):
    return subprocess.run([sys.executable, LABCTL] + list(args), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def measure_naive(facts, dialers, phase, wait, lab_size):
    """The naive procedure on these dialers (their toolkit carriers removed first), then the lab back."""
    names = [d["name"] for d in dialers]
    log("%d dialer(s): removing the toolkit's carriers for the baseline (not measured)" % len(dialers))
    clear = run_playbook("site.yml", names, {"carriers": []})
    if not clear.ok:
        clear.problems.insert(0, "removing the toolkit's carriers before the baseline failed")
        return clear, []
    data = {"naive_carriers": {}, "naive_checks": {}, "naive_wait": wait}
    for d in dialers:
        entries, checks = naive_carriers(facts, d, phase[d["name"]])
        data["naive_carriers"][d["name"]], data["naive_checks"][d["name"]] = entries, checks
    notes = []
    try:
        log("%d dialer(s): naive procedure (restart, wait %d s, grep)" % (len(dialers), wait))
        naive = run_playbook(os.path.join("benchmarks", "naive.yml"), names, data)
        if not naive.ok:
            naive.problems += sorted(set(re.findall(r"(\S+: not Registered [^\"\n]*)", naive.out)))
    finally:
        cleanup = run_playbook(os.path.join("benchmarks", "naive.yml"), names, dict(data, naive_cleanup=True))
        if not cleanup.ok:
            notes.append("the baseline's cleanup failed (exit %d): bench-naive-*.conf may be left on %s"
                         % (cleanup.rc, ", ".join(names)))
        up = labctl("up", "--hosts", str(lab_size))
        status = labctl("status")
        if up.returncode != 0 or status.returncode != 0:
            notes.append("after the baseline the lab is not healthy: %s"
                         % (up.stderr.strip() or status.stdout.strip()))
    return naive, notes


def restore(dialers):
    """site.yml with the inventory's own carriers on these dialers: the lab as `make demo` leaves it."""
    log("putting the inventory's carriers back on %d dialer(s) (not measured)" % len(dialers))
    run = run_playbook("site.yml", [d["name"] for d in dialers], {})
    return [] if run.rc == 0 else ["site.yml with the inventory's carriers exited %d afterwards" % run.rc]


def fmt(run, value):
    return "%.2f" % value if run.ok else "FAILED"


def mark(ok):
    return "ok" if ok else "MISSED"


def slope(rows, sizes, index, which):
    """Seconds per added dialer from the nearest smaller size with a valid run ('-' when none)."""
    here = rows[sizes[index]][which]
    earlier = [size for size in sizes[:index] if rows[size][which].ok]
    if not here.ok or not earlier:
        return "-"
    there = rows[earlier[-1]][which]
    return "%+.3f" % ((here.wall - there.wall) / (sizes[index] - earlier[-1]))


def targets(size, changing, noop, naive):
    out = []
    if size in TIME_TARGETS:
        chg_max, noop_max = TIME_TARGETS[size]
        out.append("chg<=%gs %s" % (chg_max, mark(changing.ok and changing.wall <= chg_max)))
        out.append("no-op<=%gs %s" % (noop_max, mark(noop.ok and noop.wall <= noop_max)))
    if naive is not None:
        out.append("naive/new>=%gx %s" % (RATIO_TARGET, mark(naive.ok and changing.ok
                                                               and naive.wall / changing.wall >= RATIO_TARGET)))
    return "  ".join(out)


def print_table(rows, naive, sizes, wait, notes):
    head = ("%7s %10s %9s %8s %9s %9s %9s %9s %8s %8s %9s %9s  %s"
            % ("dialers", "changing", "1 batch", "no-op", "+chg/dlr", "+nop/dlr", "CPU chg", "CPU nop", "RSS chg",
               "RSS nop", "naive", "naive/new", "targets"))
    print("site.yml on N lab dialers x %d carriers (7 registering, 3 IP-auth); seconds, MiB; naive = template, "
          "restart Asterisk, wait %d s, grep" % (CARRIERS, wait))
    print(head)
    print("-" * len(head))
    for i, size in enumerate(sizes):
        chg, nop, one = rows[size]["changing"], rows[size]["noop"], rows[size]["at_once"]
        nv = naive.get(size)
        ratio = "%.1fx" % (nv.wall / chg.wall) if nv is not None and nv.ok and chg.ok else "-"
        print("%7d %10s %9s %8s %9s %9s %9.2f %9.2f %8.0f %8.0f %9s %9s  %s" % (
            size, fmt(chg, chg.wall), fmt(one, one.wall), fmt(nop, nop.wall), slope(rows, sizes, i, "changing"),
            slope(rows, sizes, i, "noop"), chg.cpu, nop.cpu, chg.rss, nop.rss,
            "-" if nv is None else fmt(nv, nv.wall), ratio, targets(size, chg, nop, nv)))
    print("changing: canary then batches of 25% (the defaults); 1 batch: the same change with canary 0 and "
          "batch 100%; +chg/dlr, +nop/dlr: seconds per added dialer from the previous size; CPU: user+sys of "
          "the ansible-playbook tree; RSS: its largest process")
    for size in sizes:
        for label, run in (("changing", rows[size]["changing"]), ("1 batch", rows[size]["at_once"]),
                           ("no-op", rows[size]["noop"]),
                           ("naive", naive.get(size))):
            if run is not None and not run.ok:
                print("%d dialer(s), %s FAILED: %s (output: %s)" % (size, label, "; ".join(run.problems[:6]),
                                                                    keep_output(run, "%d-%s" % (size, label))))
    for note in notes:
        print("note: " + note)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,10,20", help="fleet sizes, comma-separated (default 1,5,10,20)")
    parser.add_argument("--naive-wait", type=int, default=60, help="seconds the naive procedure waits (default 60)")
    parser.add_argument("--skip-naive", action="store_true", help="no naive baseline")
    args = parser.parse_args()
    sizes = sorted(set(int(s) for s in args.sizes.split(",") if s.strip()))
    facts = labtools.facts()
    dialers = sorted(facts["dialers"], key=lambda d: d["index"])
    if not sizes or sizes[0] < 1 or sizes[-1] > len(dialers):
        sys.exit("bench_fleet: the lab runs %d dialer(s); sizes %s need `python3 lab/labctl.py up --hosts %d`"
                 % (len(dialers), args.sizes, sizes[-1] if sizes else 1))
    phase, rows, naive, notes = {}, {}, {}, []
    WATCH.start()
    try:
        for size in sizes:
            changing, noop, at_once = measure_toolkit(facts, dialers[:size], phase)
            rows[size] = {"changing": changing, "noop": noop, "at_once": at_once}
        if not args.skip_naive:
            for size in sizes:
                naive[size], extra = measure_naive(facts, dialers[:size], phase, args.naive_wait, len(dialers))
                notes += extra
    finally:
        notes += restore(dialers[:sizes[-1]])
        WATCH.stop.set()
    if WATCH.seen:
        notes.append("the lab was not the benchmark's alone: %s ran meanwhile; the figures may be disturbed"
                     % "; ".join(sorted(set(WATCH.seen.values()))[:4]))
    print_table(rows, naive, sizes, args.naive_wait, notes)
    failed = any(not r.ok for size in sizes for r in list(rows[size].values()) + [naive.get(size)] if r is not None)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
