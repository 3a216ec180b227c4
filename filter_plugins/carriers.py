# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Filters the vicireg_carriers role uses: preflight, render plan, change set, report.

Thin wrappers over module_utils (vicireg_carriers, vicireg_render, vicireg_report); these are the
role's internals, the public grammar filters live in registration.py.
"""
from __future__ import absolute_import, division, print_function

import os
import sys

from ansible.errors import AnsibleFilterError

__metaclass__ = type

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
if _UTILS not in sys.path:
    sys.path.insert(0, _UTILS)

import vicireg_carriers as carriers  # noqa: E402
import vicireg_grammar as grammar  # noqa: E402
import vicireg_render as render  # noqa: E402
import vicireg_report as report  # noqa: E402
import vicireg_rollout as rollout  # noqa: E402
import vicireg_status as status  # noqa: E402


def vicireg_carrier_problems(value):
    """Every problem of every carrier (list of messages; empty when all is well)."""
    return carriers.carrier_problems(value)


def vicireg_problem_rows(value, host):
    """Report rows for a dialer whose carriers the preflight refused (empty when all is well)."""
    return [{"host": host, "carrier": label, "protocol": None, "state": "refused by the preflight",
             "verdict": "failed", "cause": message, "seconds": None}
            for label, message in carriers.problems_by_carrier(value)]


def vicireg_problem_rows_of(hosts, hostvars):
    """vicireg_problem_rows for every dialer of the play (their `carriers` from hostvars)."""
    rows = []
    for host in hosts or []:
        rows += vicireg_problem_rows(hostvars[host].get("carriers"), host)
    return rows


def vicireg_problem_text(rows):
    """One line naming each refused carrier with its problem."""
    return "; ".join("carrier %s: %s" % (r.get("carrier"), r.get("cause")) for r in rows or [])


def vicireg_section_problems(plan, existing, transport_prefix="transport-"):
    """Carrier sections that would shadow, or be shadowed by, a section the dialer already has."""
    return carriers.section_problems(plan, existing or {}, transport_prefix)


def vicireg_mask_secrets(text, carrier_list):
    """text with every secret of these carriers (and the inventory's option secrets) masked."""
    return carriers.mask_secrets(str(text), carrier_list)


def vicireg_secret_values(carrier_list):
    """The carriers' secrets, for a module's no_log option (its output masks exactly these)."""
    return sorted(carriers.secret_values(carrier_list))


def vicireg_carrier_plan(value, chan_sip=True, default_timeout=20):
    """Active carriers normalised for rendering (holds secrets: use in no_log tasks only)."""
    try:
        return carriers.carrier_plan(value, bool(chan_sip), default_timeout)
    except grammar.RegistrationError as exc:
        raise AnsibleFilterError(str(exc))


def vicireg_verify_targets(plan):
    """What the verify module needs per carrier, without secrets."""
    return carriers.verify_targets(plan)


def vicireg_render(plan, drivers, transport_prefix="transport-", initial_delay=None):
    """{'templates', 'secrets', 'digests'} for the drivers loaded; every file proven to read back as
    exactly the carriers' sections and keys (render.render_files)."""
    if initial_delay is not None and (isinstance(initial_delay, bool) or not isinstance(initial_delay, int)
                                      or not 0 <= initial_delay <= 3600):
        raise AnsibleFilterError("vicireg_carriers_pjsip_initial_delay must be null or 0-3600 seconds, got %r"
                                 % (initial_delay,))
    try:
        out = render.render_files(plan, [d for d in drivers], transport_prefix, initial_delay)
    except grammar.RegistrationError as exc:
        raise AnsibleFilterError(str(exc))
    del out["files"]  # the real texts exist on the dialer only
    return out


def vicireg_changes(desired_digests, current_digests):
    """Names of carriers added, changed, removed; files touched; drivers to reload."""
    return render.changes(desired_digests or {}, current_digests or {})


def vicireg_includes(drivers):
    """The include lines the main config files need, for the drivers loaded."""
    return render.includes(drivers)


def vicireg_transport_problems(snapshot, plan, transport_prefix="transport-"):
    """chan_sip/PJSIP bind collisions and missing PJSIP transports on a dialer (list of messages)."""
    return status.plan_transport_problems(snapshot.get("sip_binds"), snapshot.get("pjsip_transports"), plan,
                                          transport_prefix)


def vicireg_failures(results, host):
    """One line naming each failing carrier of a host with its state and cause."""
    bad = ["carrier %s (%s): state %s: %s" % (r.get("name"), r.get("driver"), r.get("state"), r.get("cause"))
           for r in results or [] if r.get("verdict") == "failed"]
    return "%s: %s" % (host, "; ".join(bad) if bad else "no carrier failed")


def vicireg_unavailable(carrier_list, cause, state="unavailable"):
    """Failed verdicts for every active carrier of a dialer whose Asterisk did not answer (or whose
    deploy failed before any verdict)."""
    out = []
    for c in carrier_list if isinstance(carrier_list, list) else []:
        if isinstance(c, dict) and carriers.is_active(c):
            out.append({"name": str(c.get("name")), "driver": str(c.get("protocol", "sip")), "state": state,
                        "verdict": "failed", "cause": str(cause), "seconds": None})
    return out


def vicireg_renewed_peers(targets, change, all_changed=False):
    """Names of changed (or, for a rollback, all_changed: changed or removed) IP-auth chan_sip peers."""
    names = set(change.get("changed", []))
    if all_changed:
        names |= set(change.get("removed", []))
    return [t["name"] for t in targets or []
            if t.get("driver") == "sip" and not t.get("registers") and t["name"] in names]


def vicireg_check_mode_results(targets, change, previous):
    """Rows for a --check run: what each carrier shows now and what the run would do to it."""
    before = {p.get("name"): p.get("state") for p in previous or []}
    out = []
    for t in targets or []:
        name = t["name"]
        what = ("would be added" if name in change.get("added", []) else
                "would change" if name in change.get("changed", []) else "unchanged")
        out.append({"name": name, "driver": t["driver"], "state": before.get(name) or "absent",
                    "verdict": "check mode", "cause": what, "seconds": None})
    for name in change.get("removed", []):
        out.append({"name": name, "driver": None, "state": before.get(name) or "absent", "verdict": "check mode",
                    "cause": "would be removed", "seconds": None})
    return out


def vicireg_rollout_batches(hosts, canary=1, batch="25%"):
    """The rollout's batches of dialers with a change: the canary alone first, then batches."""
    if not isinstance(hosts, list):
        raise AnsibleFilterError("vicireg_rollout_batches expects a list of dialers, got %s" % type(hosts).__name__)
    try:
        return rollout.batches(hosts, canary, batch)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def vicireg_lock_notes(hosts, hostvars):
    """What the dialers' locks did in this run: waits for another run, and locks of dead runs taken over."""
    notes = []
    for host in hosts or []:
        snap = hostvars[host].get("vicireg_carriers_snapshot") or {}
        if snap.get("lock_waited_for"):
            notes.append("%s: waited for another run (%s)" % (host, snap["lock_waited_for"]))
        if snap.get("lock_taken_over_text"):
            notes.append("%s: took over the lock of a run that is gone (%s)" % (host, snap["lock_taken_over_text"]))
    return notes


def vicireg_change_lines(hosts, hostvars):
    """One line per dialer with a change: what its carriers and files do (names only, never content); and
    one per conflict with VICIdial's own registrations, change or not."""
    lines = []
    for host in hosts or []:
        snap = hostvars[host].get("vicireg_carriers_snapshot") or {}
        lines += ["%s: %s" % (host, text) for text in snap.get("conflicts") or []]
        change = snap.get("change")
        if not change or snap.get("noop", True):
            continue
        lines.append("%s: added: %s; changed: %s; removed: %s; files: %s; reload: %s" % (
            host, ", ".join(change["added"]) or "-", ", ".join(change["changed"]) or "-",
            ", ".join(change["removed"]) or "-", ", ".join(snap.get("unwritten") or []) or "-",
            ", ".join(change["drivers"]) or "-"))
    return lines


def vicireg_not_reached(targets, cause):
    """Rows for a dialer the rollout did not reach (an earlier batch failed): its own verdict."""
    return [{"name": t["name"], "driver": t.get("driver"), "state": "not reached", "verdict": "not reached",
             "cause": str(cause), "seconds": None} for t in targets or []]


def vicireg_row_hosts(rows):
    """The distinct hosts of report rows, in order."""
    out = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("host") not in out:
            out.append(row.get("host"))
    return out


def vicireg_report_rows(results_by_host):
    return report.report_rows(results_by_host)


def vicireg_report_table(rows):
    return report.report_table(rows)


def vicireg_report_junit(rows):
    return report.report_junit(rows)


class FilterModule:
    """The vicireg_carriers role's filters."""

    def filters(self):
        return {name: func for name, func in globals().items() if name.startswith("vicireg_") and callable(func)}
