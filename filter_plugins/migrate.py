# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Filters of playbooks/migrate-to-pjsip.yml (docs: the sidecar YAML files beside this).

Which chan_sip carriers move, the inventory's carriers as they read after the move, one carrier's
trial PJSIP file, and the closing summary.  Thin wrappers: the carrier rules, the renderer and the
mask are module_utils' (vicireg_carriers, vicireg_render, vicireg_grammar), as for the role.
"""
from __future__ import absolute_import, division, print_function

import os
import re
import sys

from ansible.errors import AnsibleFilterError

__metaclass__ = type

_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
if _UTILS not in sys.path:
    sys.path.insert(0, _UTILS)

import vicireg_carriers as carriers  # noqa: E402
import vicireg_grammar as grammar  # noqa: E402
import vicireg_render as render  # noqa: E402

# The trial file, included from pjsip.conf by '#tryinclude' (a missing file is skipped by Asterisk).
TRIAL_FILE = "vicireg-pjsip-migrate.conf"
TRIAL_HEADER = ("; vicireg TRIAL of carrier %s on PJSIP (playbooks/migrate-to-pjsip.yml), next to its chan_sip\n"
                "; registration; removed when the trial ends. Do not edit.\n")


def _names(value):
    """The requested carrier names: a list, or one string 'a,b' / 'a b' (handy with -e); None = default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return [n for n in re.split(r"[,\s]+", value) if n]
    if isinstance(value, (list, tuple)) and all(isinstance(n, str) for n in value):
        return list(value)
    raise AnsibleFilterError("vicireg_migrate_carriers must be a list of carrier names (or one string 'a,b'), "
                             "got %s" % type(value).__name__)


def _protocol(carrier):
    # An explicit null means the default, as the role's preflight reads it.
    return carrier.get("protocol") or "sip"


def vicireg_migrate_select(carrier_list, requested, previous):
    """Which carriers move on a dialer, which already did, and why a requested name cannot move.

    carrier_list: the dialer's inventory carriers; requested: names or None (every active carrier that
    registers, is 'sip' in the inventory and runs on the dialer's chan_sip); previous: the snapshot's
    'previous' (the carriers in the toolkit's files on the dialer, with their driver).
    Returns {'move': [names], 'already': [names], 'problems': [messages]} (no secrets).
    """
    if not isinstance(carrier_list, list):
        raise AnsibleFilterError("carriers must be a list of carrier dicts")
    on = {"sip": set(), "pjsip": set()}
    for item in previous or []:
        if isinstance(item, dict) and item.get("driver") in on:
            on[item["driver"]].add(item.get("name"))
    inventory = {}
    for carrier in carrier_list:
        if isinstance(carrier, dict) and isinstance(carrier.get("name"), str):
            inventory[carrier["name"]] = carrier

    def movable(c):
        return (_protocol(c) == "sip" and carriers.is_active(c) and bool((c.get("registration") or "").strip()))

    # Moved by an earlier run while the inventory still says sip: they must stay PJSIP in every role run
    # of this one (the role would otherwise put them back on chan_sip).
    already = [n for n, c in inventory.items() if movable(c) and n in on["pjsip"] and n not in on["sip"]]
    names = _names(requested)
    if names is None:
        return {"move": [n for n, c in inventory.items() if movable(c) and n in on["sip"]], "already": already,
                "problems": []}
    move, problems = [], []
    for name in names:
        c = inventory.get(name)
        if name in move:
            continue
        if c is None:
            problems.append("carrier %r is not among this dialer's carriers in the inventory" % name)
        elif _protocol(c) != "sip":
            problems.append("carrier %r has protocol %s in the inventory; only sip (chan_sip) carriers move"
                            % (name, _protocol(c)))
        elif not carriers.is_active(c):
            problems.append("carrier %r is not active (Active=N): the dialer runs nothing of it to move" % name)
        elif not (c.get("registration") or "").strip():
            problems.append("carrier %r authenticates by IP (no registration): the carrier sends its calls to "
                            "chan_sip's port and PJSIP listens on another, so only the carrier can move it "
                            "(nothing here could prove it)" % name)
        elif name in already:
            continue
        elif name not in on["sip"]:
            problems.append("carrier %r is not on this dialer's chan_sip (the toolkit's chan_sip files do not "
                            "have it): run site.yml first" % name)
        else:
            move.append(name)
    return {"move": move, "already": already, "problems": problems}


def vicireg_migrate_as_pjsip(carrier_list, names):
    """The inventory's carriers with protocol pjsip on the named ones (holds secrets: no_log use only)."""
    if not isinstance(carrier_list, list):
        raise AnsibleFilterError("carriers must be a list of carrier dicts")
    wanted = set(names or [])
    return [dict(c, protocol="pjsip") if isinstance(c, dict) and c.get("name") in wanted else c
            for c in carrier_list]


def vicireg_migrate_trial(carrier_list, name, transport_prefix="transport-", initial_delay=None, default_timeout=20):
    """One carrier's PJSIP sections alone, for the trial file: exactly the sections the role writes for it.

    carrier_list: carriers where `name` has protocol pjsip (vicireg_migrate_as_pjsip).  Returns
    {'file', 'template' (each secret a token), 'secrets' (token -> secret), 'masked' (secrets masked),
    'target' (what vicireg_registration_status judges, no secrets), 'transport'}.
    """
    if initial_delay is not None and (isinstance(initial_delay, bool) or not isinstance(initial_delay, int)
                                      or not 0 <= initial_delay <= 3600):
        raise AnsibleFilterError("vicireg_carriers_pjsip_initial_delay must be null or 0-3600 seconds, got %r"
                                 % (initial_delay,))
    try:
        plan = carriers.carrier_plan(carrier_list, True, default_timeout)
        item = [p for p in plan if p["name"] == name]
        if not item or item[0]["driver"] != "pjsip":
            raise AnsibleFilterError("carrier %r is not an active pjsip carrier of this list" % (name,))
        if item[0].get("pjsip_style", "sections") != "sections":
            # A sip carrier cannot have one (the preflight refuses it): the move writes plain sections.
            raise AnsibleFilterError("carrier %r: a trial writes PJSIP sections, not pjsip_style %s"
                                     % (name, item[0].get("pjsip_style")))
        # The very renderer (and read-back check) of the role, on this one carrier: when the role later
        # writes the carrier into vicireg-pjsip.conf, its sections are identical, so the reload keeps the
        # PJSIP registration the trial proved.
        out = render.render_files(item, ["pjsip"], transport_prefix, initial_delay)
    except grammar.RegistrationError as exc:
        raise AnsibleFilterError(str(exc))
    body = out["templates"]["vicireg-pjsip.conf"]
    # The carrier's marked block without the header of vicireg-pjsip.conf (this file is not that one).
    template = TRIAL_HEADER % name + "\n" + body[body.index("; vicireg:begin "):]
    masked = render.fill_template(template, dict((token, grammar.MASK) for token in out["secrets"]))
    target = carriers.verify_targets(item)[0]
    return {"file": TRIAL_FILE, "template": template, "secrets": out["secrets"], "masked": masked,
            "target": target, "transport": transport_prefix + (target.get("transport") or "udp")}


def vicireg_migrate_fill(template, secrets):
    """The real text of a template: every token replaced by its secret (no_log tasks only)."""
    return render.fill_template(str(template), dict(secrets or {}))


def vicireg_migrate_summary(host, moved, already, stayed, unproven=None, planned=None, check_mode=False):
    """The closing lines for one dialer: what moved, what stayed on chan_sip and why, and the inventory
    change to make (names and causes only)."""
    moved, already, stayed = list(moved or []), list(already or []), list(stayed or [])
    names = [m["name"] if isinstance(m, dict) else m for m in moved]
    lines = []
    if check_mode:
        if planned:
            lines.append("check mode, nothing was changed: would move to PJSIP, one at a time: %s"
                         % ", ".join(planned))
            lines.append("inventory change to make once they moved: carriers: set protocol: pjsip on %s"
                         % ", ".join(list(already) + list(planned)))
        else:
            lines.append("check mode: no chan_sip carrier to move")
        if already:
            lines.append("already on PJSIP on this dialer (the inventory still says sip): %s" % ", ".join(already))
        return ["%s: %s" % (host, line) for line in lines]
    for m in moved:
        if isinstance(m, dict):
            lines.append("moved to PJSIP: %s (%s)" % (m["name"], m.get("how") or "registered"))
        else:
            lines.append("moved to PJSIP: %s" % m)
    if unproven:
        lines.append("inbound path NOT proven (no vicireg_migrate_test_call given) for: %s" % ", ".join(unproven))
    if already:
        lines.append("already on PJSIP on this dialer (the inventory still says sip): %s" % ", ".join(already))
    for s in stayed:
        lines.append("%s stays on chan_sip: %s" % (s["name"], s["cause"]))
    if names or already:
        lines.append("inventory change to make: carriers: set protocol: pjsip on %s"
                     % ", ".join(already + names))
        lines.append("until the inventory says so, a site.yml run puts them back on chan_sip")
    else:
        lines.append("inventory change to make: none")
    if not (moved or already or stayed):
        lines.insert(0, "no chan_sip carrier to move")
    return ["%s: %s" % (host, line) for line in lines]


def vicireg_migrate_failure(host, stayed, error=None):
    """One line naming each carrier that stayed on chan_sip with its cause (and an error that stopped the move)."""
    parts = ["%s stays on chan_sip: %s" % (s["name"], s["cause"]) for s in stayed or []]
    if error:
        parts.append("the move stopped: %s" % error)
    return "%s: %s" % (host, "; ".join(parts) if parts else "every carrier moved")


class FilterModule:
    """The migrate-to-pjsip playbook's filters."""

    def filters(self):
        return {name: func for name, func in globals().items()
                if name.startswith("vicireg_migrate_") and callable(func)}
