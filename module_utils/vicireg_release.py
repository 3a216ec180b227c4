# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Before a reload: make the carrier drop what this dialer's old registrations would leave there
(chan_sip never un-REGISTERs; a removed PJSIP registration does not answer the digest challenge)."""
from __future__ import absolute_import, division, print_function

import os
import time

from ansible.module_utils import vicireg_files as files
from ansible.module_utils import vicireg_grammar as grammar
from ansible.module_utils import vicireg_render as render
from ansible.module_utils import vicireg_status as status
from ansible.module_utils import vicireg_unregister as unregister

__metaclass__ = type


def _read(path):
    return files.read(path) or ""


def _contact_key(reg):
    """What a chan_sip binding at the registrar is: the account (AOR) and this dialer's contact user."""
    return (reg["username"], (reg["domain"] or reg["host"]).lower(), reg["extension"], reg["transport"])


def release_sip(ast, touched):
    """Before chan_sip reloads: un-REGISTER the contacts of register lines this change removes or whose
    contact it changes (chan_sip itself never does).  ([(carrier, contacts removed)], [problems])."""
    released, problems = [], []
    for item in touched:
        if os.path.basename(item.get("dest") or "") != "vicireg-sip-register.conf" or not item.get("backup_file"):
            continue
        old = render._blocks(_read(item["backup_file"]))
        new = render._blocks(_read(item["dest"]))
        binds = dict(status.parse_sip_binds(ast.rx("sip show settings", "sip"))) if old else {}
        for name in sorted(old):
            try:
                before = grammar.parse_registration(old[name].strip(), "sip")
            except grammar.RegistrationError:
                continue
            try:
                after = grammar.parse_registration(new[name].strip(), "sip") if name in new else None
            except grammar.RegistrationError:
                after = None
            if after is not None and _contact_key(after) == _contact_key(before):
                continue  # the same contact of the same account: chan_sip's next REGISTER replaces it
            bind = binds.get("sip-" + before["transport"]) or binds.get("sip-udp")
            if not bind:
                continue
            host, port = status.split_bind(bind)
            try:
                released.append((name, unregister.release(before, before["extension"], port, [host])))
            except unregister.SipError as exc:
                problems.append("%s: old contact not removed at the carrier (%s); it expires by itself" % (name, exc))
    return released, problems


def _registrations(filename, text):
    return set(t["registration"] for t in render.current_targets({filename: text}) if t.get("registration"))


def release_pjsip(ast, touched):
    """Before PJSIP reloads: unregister the registrations this change removes, while they still exist.

    Seen in the lab (Asterisk 22): a registration removed by a reload sends its un-REGISTER but never
    answers the registrar's digest challenge, so its contact stays.  `pjsip send unregister` on the
    live object does answer it.  Returns ([registration names], [problems])."""
    gone = []
    for item in touched:
        name = os.path.basename(item.get("dest") or "")
        if name not in ("vicireg-pjsip.conf", "vicireg-pjsip-wizard.conf") or not item.get("backup_file"):
            continue
        gone += sorted(_registrations(name, _read(item["backup_file"])) - _registrations(name, _read(item["dest"])))
    if not gone:
        return [], []
    for reg in gone:
        ast.rx("pjsip send unregister %s" % reg, "pjsip")
    deadline = time.time() + 4
    while True:
        rows = {r["name"]: r["state"] for r in status.parse_pjsip_registrations(ast.rx("pjsip show registrations", "pjsip"))}
        waiting = [r for r in gone if rows.get(r) not in (None, "Unregistered")]
        if not waiting or time.time() > deadline:
            break
        time.sleep(0.1)
    return gone, ["%s: still %s after 'pjsip send unregister'; its contact expires by itself" % (r, rows.get(r))
                  for r in waiting]
