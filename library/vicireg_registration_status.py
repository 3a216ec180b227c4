#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vicireg_registration_status
short_description: Reload Asterisk drivers and prove each carrier registered (or is reachable)
description:
  - Runs on the dialer. In C(snapshot) mode it reads, once, which drivers are loaded, the digests
    of the toolkit's own include files (run it with C(no_log) - they are digests of blocks that hold
    secrets) and the carriers in those files with their current state, read back with the
    registration-string grammar. It does not fail when Asterisk is down; it returns
    C(running=false) and the C(cause).
  - In C(wait) mode it reloads the listed drivers (never restarts Asterisk), then polls the
    registration state every O(interval) seconds until every carrier has a verdict or its timeout
    passes, and returns per carrier the state, verdict, cause and seconds to verdict.
  - Only the carriers passed in are judged; VICIdial's own inter-server IAX2 registrations are not.
options:
  carriers:
    description: Carriers to judge, as returned by the C(vicireg_verify_targets) filter (no secrets).
    type: list
    elements: dict
    default: []
  mode:
    description: C(snapshot) reads once; C(wait) reloads then polls for verdicts; C(release) gives the lock back.
    type: str
    choices: [snapshot, wait, release]
    default: wait
  reload:
    description: Drivers to reload before polling (C(sip), C(iax2), C(pjsip)).
    type: list
    elements: str
    default: []
  fresh:
    description: Carriers whose config changed; a registration from before the reload does not count.
    type: list
    elements: str
    default: []
  interval:
    description: Seconds between reads (at most 0.25).
    type: float
    default: 0.2
  auth_grace:
    description: Seconds that C(Auth. Sent) may persist before the secret is judged refused.
    type: float
    default: 2.0
  release:
    description: >-
      The files this change wrote (C(touched) of vicireg_config_files: dest and backup_file). Before
      chan_sip reloads, the carrier's registrar is asked to drop this dialer's old contact of every
      register line removed or whose contact changed (chan_sip never un-REGISTERs by itself).
    type: list
    elements: dict
    default: []
  settle:
    description: >-
      Seconds after a forced PJSIP re-REGISTER during which an old C(Registered) state does not count
      (a wrong new secret turns it to C(Rejected) within a round trip or two).
    type: float
    default: 1.0
  asterisk:
    description: The asterisk binary.
    type: str
    default: asterisk
  conf_dir:
    description: Asterisk's configuration directory (snapshot reads the toolkit's files there).
    type: path
    default: /etc/asterisk
  desired:
    description: >-
      Snapshot only: the carriers as in inventory (C(carriers)) and the render settings (C(default_timeout),
      C(transport_prefix), C(initial_delay), C(owner), C(group), C(mode)). The module renders them here
      against this Asterisk and returns C(change), C(targets), C(problems) and C(noop); with O(judge) and
      nothing to change it also judges the carriers as they are (C(carriers), C(failed_carriers)).
    type: dict
  secrets:
    description: The carriers' secrets; the module's output masks exactly these.
    type: list
    elements: str
    default: []
  judge:
    description: Snapshot only, with O(desired) - judge the carriers when nothing is to change.
    type: bool
    default: true
  strict:
    description: Snapshot only - fail when Asterisk does not answer or a carrier cannot go on this dialer.
    type: bool
    default: false
  write:
    description: >-
      Wait only - first write these files (C(files) templates, C(includes), C(owner), C(group), C(mode),
      C(backups_keep); as vicireg_config_files does), then reload the drivers of the files written
      (O(reload) is ignored) and judge. Returns C(touched) for a rollback.
    type: dict
  write_secrets:
    description: The secrets the templates of O(write) stand for (token to secret).
    type: dict
    default: {}
  refresh_peers:
    description: >-
      With O(write) - IP-auth chan_sip peers (changed ones) taken out for one reload before the reload
      that proves them, so their reachability is measured anew.
    type: list
    elements: str
    default: []
  fail_on_failed:
    description: Wait only - fail the task when a carrier's verdict is C(failed) (the result still has every verdict).
    type: bool
    default: false
  lock:
    description: >-
      This run as the owner of the dialer's lock (the action plugin fills it in from C(true)); snapshot
      takes the lock, every other call renews it and fails when this run lost it.
    type: raw
  lock_file:
    description: The lock file on the dialer.
    type: path
    default: /run/lock/vicireg-carriers.lock
  lock_lease:
    description: Seconds the hold lasts without a call renewing it.
    type: float
    default: 300
  lock_wait:
    description: Snapshot only (action plugin) - seconds to wait for a dialer another run holds.
    type: float
    default: 0
  lock_steal:
    description: Take the lock over from this run id (the controller saw that run is dead).
    type: str
  unlock:
    description: Give the lock back at the end - C(never), C(if_ok) (no carrier failed) or C(always).
    type: str
    choices: [never, if_ok, always]
    default: never
  audit:
    description: >-
      Snapshot with O(desired) as a read-only audit (playbooks/status.yml) - never takes or waits for the
      lock (a run holding it is named in every row), writes and reloads nothing, judges the inventory's
      carriers as they are (at most O(audit_wait) seconds each), and reports drift, VICIdial's own
      registrations of the same user and host (conflicts) and chan_sip's seconds since the last registration.
    type: bool
    default: false
  audit_wait:
    description: Audit only - the most seconds a carrier's verdict is waited for (a carrier's timeout caps it too).
    type: float
    default: 5
author: vicireg project
"""

EXAMPLES = r"""
- name: Reload chan_sip and wait for every carrier's verdict
  vicireg_registration_status:
    carriers: "{{ vicireg_carriers_plan | vicireg_verify_targets }}"
    reload: [sip]
"""

RETURN = r"""
carriers:
  description: One entry per carrier with name, driver, state, verdict, cause, seconds.
  returned: wait
  type: list
  elements: dict
failed_carriers:
  description: Names of the carriers whose verdict is C(failed).
  returned: wait
  type: list
running:
  description: Whether Asterisk answered.
  returned: always
  type: bool
drivers:
  description: Which of sip, iax2, pjsip are loaded.
  returned: snapshot
  type: dict
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils import vicireg_asterisk as asterisk
from ansible.module_utils import vicireg_audit as audit
from ansible.module_utils import vicireg_carriers as carriers
from ansible.module_utils import vicireg_dns as dns
from ansible.module_utils import vicireg_grammar as grammar
from ansible.module_utils import vicireg_lock as lock
from ansible.module_utils import vicireg_release as release
from ansible.module_utils import vicireg_render as render
from ansible.module_utils import vicireg_status as status
from ansible.module_utils import vicireg_write as write


_DNS_PROBLEMS = {}


def dns_problem(target):
    """vicireg_dns.resolution_problem for a target, asked once per run (a timeout and the final causes
    both need it)."""
    t = target
    key = (t["host"], t["port"], t.get("port_given", True), t.get("transport") or "udp", t["driver"])
    if key not in _DNS_PROBLEMS:
        _DNS_PROBLEMS[key] = None if not t["host"] else dns.resolution_problem(
            t["host"], t["port"], t.get("port_given", True), t.get("transport") or "udp",
            srv=t["driver"] != "iax2", naptr=t["driver"] == "pjsip")
    return _DNS_PROBLEMS[key]


_TOUCHED = []  # what this call wrote, for the rollback also when Asterisk stops answering mid-way


def wait(module, ast, targets):
    """Write (when given the files), release, reload, judge: a change is this one call."""
    params = dict(module.params)
    touched, refreshed = None, None
    if params["write"] is not None:
        w = params["write"]
        try:
            planned = write.plan(params["conf_dir"], w.get("files"), params["write_secrets"], w.get("includes"),
                                 w.get("owner", "root"), w.get("group", "asterisk"), w.get("mode", "0640"))
            touched, _ = write.apply(planned, module.backup_local, int(w.get("backups_keep", 5)))
        except write.WriteError as exc:
            module.fail_json(msg=str(exc), touched=exc.touched, carriers=[], failed_carriers=[])
        _TOUCHED[:] = touched
        params["release"] = touched
        params["reload"] = sorted(set(t["driver"] for t in touched if t["driver"]))
        peers = [n for n in params["refresh_peers"] if n in set(params["fresh"])]
        if "sip" in params["reload"] and peers:
            refreshed = write.refresh_sip_peers(lambda c: ast.rx(c, "sip"), params["conf_dir"], peers)
    result = judge(ast, targets, params, lock=_Lease(module))
    if touched is not None:
        result.update(touched=touched, peers_refreshed=refreshed)
    return result


def judge(ast, targets, params, lock=None):
    """Reload params['reload'] (after releasing what chan_sip/PJSIP would leave at the carrier), then
    poll until every target has a verdict; a no-op run calls it with nothing to reload."""
    interval = min(params["interval"], 0.25)
    released, release_problems = [], []
    if "sip" in params["reload"] and params["release"]:
        released, release_problems = release.release_sip(ast, params["release"])
    if "pjsip" in params["reload"] and params["release"]:
        gone, problems = release.release_pjsip(ast, params["release"])
        released += [(r, None) for r in gone]
        release_problems += problems
    start = time.time()
    for driver in params["reload"]:
        ast.rx(render.RELOAD[driver], driver)
    fresh = set(params["fresh"])
    # A new PJSIP registration waits a random initial delay (up to ~10 s on Asterisk 22), and a changed
    # auth alone does not re-register: ask for each changed one as soon as its object exists.
    to_send = set(t["name"] for t in targets
                  if t["driver"] == "pjsip" and t["registers"] and t["name"] in fresh and "pjsip" in params["reload"])
    # A new PJSIP contact is first qualified anywhere within qualify_frequency: qualify it now.
    to_qualify = set(t["name"] for t in targets
                     if t["driver"] == "pjsip" and not t["registers"] and t["name"] in fresh and "pjsip" in params["reload"])
    # chan_sip's reload runs in the background: only a registration stamped after it counts.
    fresh_since = int(start) if "sip" in params["reload"] else None
    judges = {t["name"]: status.Judge(t, start, fresh_since if t["name"] in fresh else None, params["auth_grace"])
              for t in targets}
    polls = 0
    while True:
        if lock and polls % 20 == 19:
            lock.refresh()
        states = asterisk.read_states(ast, [j.target for j in judges.values() if j.verdict is None])
        polls += 1
        now = time.time()
        for name, (state, regtime) in states.items():
            if name in to_send and state is not None:
                # Also when it shows Registered: a changed auth alone does not re-register by itself.
                to_send.discard(name)
                ast.rx("pjsip send register %s" % (judges[name].target.get("registration") or name + "-reg"), "pjsip")
                judges[name].accept_after = time.time() + params["settle"]
                continue
            if name in to_qualify and state is not None:
                to_qualify.discard(name)
                ast.rx("pjsip qualify %s" % name, "pjsip")
                if state not in status.QUALIFY_OK:
                    continue
            judges[name].observe(state, now, regtime)
        waiting = [j for j in judges.values() if j.verdict is None]
        for j in waiting:
            if now - start >= j.target["timeout"]:
                j.timeout(now, dns_problem(j.target))
        if all(j.verdict is not None for j in judges.values()):
            break
        time.sleep(interval)
    for j in judges.values():
        # PJSIP turns a name that does not resolve into 'Rejected' at once: say what DNS says.
        problem = dns_problem(j.target) if j.verdict == "failed" else None
        if problem and not problem.startswith("srv:"):
            j.cause = problem
    results = []
    for t in targets:
        j = judges[t["name"]]
        results.append({"name": t["name"], "driver": t["driver"], "state": j.state or "absent",
                        "verdict": j.verdict, "cause": j.cause, "seconds": j.seconds, "regtime": j.regtime})
    failed = [r["name"] for r in results if r["verdict"] == "failed"]
    return dict(changed=bool(params["reload"]), running=True, carriers=results, failed_carriers=failed,
                polls=polls, cli_calls=ast.calls, reloaded=params["reload"],
                released=[{"name": n, "contacts": c} for n, c in released], release_problems=release_problems)


class _Lease:
    """This run's hold on the dialer's lock (module_utils/vicireg_lock), when the task passes `lock`."""

    def __init__(self, module):
        p = module.params
        self.owner, self.path, self.lease = p["lock"], p["lock_file"], p["lock_lease"]
        self.module = module

    def acquire(self):
        """(acquired, result fields): busy is not a failure, the action plugin waits and retries."""
        if not self.owner:
            return True, {}
        got, holder, taken = lock.acquire(self.path, self.owner, self.lease, self.module.params["lock_steal"])
        if not got:
            return False, dict(lock_busy=True, lock_holder=holder, lock_holder_text=lock.describe(holder))
        return True, dict(lock_held=True, lock_taken_over=taken,
                          lock_taken_over_text=lock.describe(taken) if taken else None)

    def refresh(self):
        if self.owner:
            try:
                lock.refresh(self.path, self.owner, self.lease)
            except lock.LockLost as exc:
                self.module.fail_json(msg=str(exc), lock_lost=True)

    def release(self):
        return bool(self.owner) and lock.release(self.path, self.owner)


def desired_state(module, snap):
    """Render the carriers here, against this Asterisk (the drivers it loaded, chan_sip or not), and
    compare with the files as they are: what would change, and what stops a change (transports, sections).
    The same code the controller's filters run (module_utils), shipped with this module."""
    want = module.params["desired"]
    # The output must never carry a secret (the task is no_log too, but a caller may forget).
    module.no_log_values.update(carriers.secret_values(want["carriers"]))
    loaded = [d for d in ("sip", "iax2", "pjsip") if snap["drivers"].get(d)]
    has_chan_sip = bool(snap["drivers"].get("sip")) or (snap["major"] or 0) < 21
    try:
        plan = carriers.carrier_plan(want["carriers"], has_chan_sip, int(want.get("default_timeout", 20)))
        rendered = render.render_files(plan, loaded, want.get("transport_prefix", "transport-"),
                                       want.get("initial_delay"))
    except grammar.RegistrationError as exc:
        module.fail_json(msg=carriers.mask_secrets(str(exc), want["carriers"]), running=True)
    prefix = want.get("transport_prefix", "transport-")
    problems = (status.plan_transport_problems(snap["sip_binds"], snap["pjsip_transports"], plan, prefix)
                + carriers.section_problems(plan, snap["sections"], prefix))
    change = render.changes(rendered["digests"], snap["digests"])
    pending = _unwritten(module.params["conf_dir"], rendered["files"], loaded, want)
    return dict(has_chan_sip=has_chan_sip, change=change, targets=carriers.verify_targets(plan), problems=problems,
                noop=not change["files"] and not pending, unwritten=pending)


def _unwritten(conf_dir, texts, loaded, want):
    """The files (main files for their include lines too) the writer would write: the one-call no-op needs
    none. Asked of vicireg_write itself, so that this test and the write can never disagree."""
    try:
        planned = write.plan(conf_dir, texts, {}, render.includes(loaded), want.get("owner", "root"),
                             want.get("group", "asterisk"), want.get("mode", "0640"))
    except write.WriteError as exc:
        return [str(exc)]
    return [os.path.basename(path) for path in write.pending(planned)]


def run_snapshot(module, ast):
    """One call for a no-op: take the lock, read, render and compare here, and judge the carriers as
    they are when nothing is to change (then give the lock back at once)."""
    p = module.params
    lease = _Lease(module)
    got, fields = lease.acquire()
    if not got:
        module.exit_json(changed=False, running=None, **fields)
    try:
        snap = asterisk.snapshot(module.params["conf_dir"], ast)
        snap.update(fields)
        if p["desired"] is not None:
            snap.update(desired_state(module, snap))
            # Shown in the plan, not refused: VICIdial's own register line of the same account fights ours.
            found = audit.conflicts(snap["targets"], audit.vicidial_registrations(p["conf_dir"]))
            snap["conflicts"] = [c for n in sorted(found) for c in found[n]]
            if snap["noop"] and not snap["problems"] and p["judge"]:
                snap.update(judge(ast, snap["targets"], dict(p, reload=[], fresh=[], release=[])))
                snap["changed"] = False
    except status.AsteriskUnavailable as exc:
        (module.fail_json if p["strict"] else module.exit_json)(
            msg=str(exc), changed=False, running=False, cause=str(exc), drivers={}, digests={}, previous=[],
            lock_released=lease.release(), **fields)
    if p["desired"] is None or snap["noop"] or snap["problems"]:
        # Nothing will be written on this dialer in this run: no reason to keep others waiting.
        snap["lock_released"] = lease.release()
    if p["strict"] and snap.get("problems"):
        module.fail_json(msg="%s; nothing was changed" % "; ".join(snap["problems"]), **snap)
    return snap


def run_audit(module, ast):
    """The read-only audit: read, compare with the inventory, judge as is; no lock, no write, no reload."""
    p = module.params
    note = audit.lock_note(p["lock_file"])
    try:
        snap = asterisk.snapshot(p["conf_dir"], ast)
        snap.update(desired_state(module, snap))
        targets = [dict(t, timeout=min(float(t["timeout"]), p["audit_wait"])) for t in snap["targets"]]
        loaded = set(d for d, up in snap["drivers"].items() if up)
        missing = set(snap["change"]["added"])
        judged = [t for t in targets if t["name"] not in missing and t["driver"] in loaded]
        results = judge(ast, judged, dict(p, reload=[], fresh=[], release=[]))["carriers"] if judged else []
    except status.AsteriskUnavailable as exc:
        module.exit_json(changed=False, running=False, cause=str(exc), carriers=[], failed_carriers=[],
                         lock_note=note, now=time.time())
    now = time.time()
    by_name = dict((r["name"], r) for r in results)
    rows = []
    for t in targets:
        row = by_name.get(t["name"]) or audit.absent_row(t, missing)
        regtime = row.get("regtime")
        # Only chan_sip shows when it last registered (the judge kept it); PJSIP and IAX2 do not (no value
        # is made up).
        row["since_registration"] = max(0, int(now - regtime)) if regtime else None
        rows.append(row)
    drift = audit.drift_line(snap["change"], snap["unwritten"])
    changed = set(snap["change"]["changed"])
    notes = dict((n, ["drift: this carrier's config on the dialer differs from the inventory (run site.yml)"])
                 for n in changed)
    found = audit.conflicts(targets, audit.vicidial_registrations(p["conf_dir"]))
    dialer_notes = [x for x in [note] if x] + ["problem: %s" % x for x in snap["problems"]]
    rows = audit.annotate(rows, found, notes, dialer_notes)
    module.exit_json(changed=False, running=True, version=snap["version"], drivers=snap["drivers"], carriers=rows,
                     failed_carriers=[r["name"] for r in rows if r["verdict"] == "failed"], drift=drift,
                     change=snap["change"], conflicts=[c for n in sorted(found) for c in found[n]],
                     lock_note=note, problems=snap["problems"], now=now)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            carriers=dict(type="list", elements="dict", default=[]),
            mode=dict(type="str", choices=["snapshot", "wait", "release"], default="wait"),
            reload=dict(type="list", elements="str", default=[]),
            fresh=dict(type="list", elements="str", default=[]),
            interval=dict(type="float", default=0.2),
            auth_grace=dict(type="float", default=2.0),
            settle=dict(type="float", default=1.0),
            asterisk=dict(type="str", default="asterisk"),
            conf_dir=dict(type="path", default="/etc/asterisk"),
            release=dict(type="list", elements="dict", default=[]),
            desired=dict(type="dict"),
            secrets=dict(type="list", elements="str", default=[], no_log=True),
            judge=dict(type="bool", default=True),
            strict=dict(type="bool", default=False),
            fail_on_failed=dict(type="bool", default=False),
            write=dict(type="dict"),
            write_secrets=dict(type="dict", default={}, no_log=True),
            refresh_peers=dict(type="list", elements="str", default=[]),
            lock=dict(type="dict"),
            lock_file=dict(type="path", default=lock.DEFAULT_PATH),
            lock_lease=dict(type="float", default=300.0),
            lock_steal=dict(type="str"),
            unlock=dict(type="str", choices=["never", "if_ok", "always"], default="never"),
            audit=dict(type="bool", default=False),
            audit_wait=dict(type="float", default=5.0),
        ),
        supports_check_mode=True,
    )
    for driver in module.params["reload"]:
        if driver not in render.RELOAD:
            module.fail_json(msg="reload: unknown driver %r (sip, iax2, pjsip)" % driver)
    targets = module.params["carriers"]
    for t in targets:
        t.setdefault("timeout", 20)
    ast = asterisk.Asterisk(module, module.params["asterisk"])
    lease = _Lease(module)
    if module.params["mode"] == "release":
        module.exit_json(changed=False, lock_released=lease.release())
    if module.params["audit"]:
        if module.params["mode"] != "snapshot" or module.params["desired"] is None or module.params["lock"]:
            module.fail_json(msg="audit needs mode snapshot and desired, and takes no lock")
        run_audit(module, ast)
    try:
        if module.params["mode"] == "snapshot" or module.check_mode:
            module.exit_json(**run_snapshot(module, ast))
        lease.refresh()
        result = wait(module, ast, targets)
    except status.AsteriskUnavailable as exc:
        results = [{"name": t["name"], "driver": t["driver"], "state": "unavailable", "verdict": "failed",
                    "cause": str(exc), "seconds": None} for t in targets]
        released = module.params["unlock"] == "always" and lease.release()
        module.fail_json(msg=str(exc), running=not str(exc).startswith("Asterisk is not running"),
                         carriers=results, failed_carriers=[t["name"] for t in targets], lock_released=released,
                         touched=list(_TOUCHED))
    unlock = module.params["unlock"]
    result["lock_released"] = (unlock == "always" or (unlock == "if_ok" and not result["failed_carriers"])) \
        and lease.release()
    if module.params["fail_on_failed"] and result["failed_carriers"]:
        module.fail_json(msg="; ".join("carrier %s (%s): state %s: %s" % (r["name"], r["driver"], r["state"], r["cause"])
                                       for r in result["carriers"] if r["verdict"] == "failed"), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
