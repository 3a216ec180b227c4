# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""The read-only audit's extras (playbooks/status.yml): VICIdial's own registrations that fight with a
toolkit carrier over one contact, the dialer's lock as a note, and notes folded into each carrier's row.

Pure Python (3.6+); vicireg_registration_status runs it on the dialer in audit mode. Reads files only.
"""
from __future__ import absolute_import, division, print_function

import os
import re
import time

try:
    from ansible.module_utils import vicireg_conffile as conffile
    from ansible.module_utils import vicireg_grammar as grammar
    from ansible.module_utils import vicireg_lock as lock
    from ansible.module_utils import vicireg_status as status
except ImportError:
    import vicireg_conffile as conffile
    import vicireg_grammar as grammar
    import vicireg_lock as lock
    import vicireg_status as status

__metaclass__ = type

# VICIdial's generated files (ADMIN_keepalive_ALL.pl) and the driver that reads each.
VICIDIAL_FILES = (("sip-vicidial.conf", "sip"), ("iax-vicidial.conf", "iax2"),
                  ("pjsip-vicidial.conf", "pjsip"), ("pjsip_wizard-vicidial.conf", "pjsip"))
_URI = re.compile(r"^sips?:(?:([^@;>]+)@)?(\[[^\]]+\]|[^:;>]+)(?::(\d+))?", re.IGNORECASE)


def _uri(text):
    """(user, host, port) of a 'sip:[user@]host[:port]' value; port None when not written."""
    m = _URI.match((text or "").strip())
    if not m:
        return None, None, None
    return m.group(1), m.group(2).strip("[]").lower(), int(m.group(3)) if m.group(3) else None


def vicidial_registrations(conf_dir):
    """Every registration VICIdial's generated files hold: [{file, line, driver, username, host, port}].

    chan_sip and IAX2 'register =>' lines are read with the one grammar (a line it refuses is skipped:
    Asterisk misreads it, so it cannot be compared); PJSIP 'type=registration' sections and wizard
    sections with 'sends_registrations=yes' by their URIs and auth user. Never a secret."""
    found = []
    for filename, driver in VICIDIAL_FILES:
        path = os.path.join(conf_dir, filename)
        try:
            with open(path) as handle:
                text = handle.read()
        except (IOError, OSError, UnicodeDecodeError):
            continue
        section, opts, start = None, {}, 0
        for entry in conffile.entries(text) + [conffile.Entry("section", None, "", 0)]:
            if entry.kind == "option" and entry.name.lower() == "register" and driver != "pjsip":
                try:
                    reg = grammar.parse_registration(entry.value, driver)
                except grammar.RegistrationError:
                    continue
                found.append({"file": filename, "line": entry.line, "driver": driver, "username": reg["username"],
                              "host": reg["host"].strip("[]").lower(), "port": reg["port"]})
            elif entry.kind == "option":
                opts.setdefault(entry.name.lower(), entry.value)
            elif entry.kind == "section":
                if driver == "pjsip" and section is not None:
                    item = _pjsip_registration(opts)
                    if item:
                        found.append(dict(item, file=filename, line=start, driver="pjsip"))
                section, opts, start = entry.name, {}, entry.line
    return found


def _pjsip_registration(opts):
    """(user, host, port) of a PJSIP registration section or a registering wizard section, else None."""
    if opts.get("type") == "registration":
        server, client = _uri(opts.get("server_uri")), _uri(opts.get("client_uri"))
    elif opts.get("type") == "wizard" and opts.get("sends_registrations", "").lower() in ("yes", "true", "1"):
        remote = (opts.get("remote_hosts") or "").split(",")[0].strip()
        server = _uri("sip:" + remote) if remote else (None, None, None)
        client = _uri(opts.get("client_uri")) if opts.get("client_uri") else (opts.get("outbound_auth/username"),)
    else:
        return None
    user = client[0] or opts.get("outbound_auth/username")
    if not user or not server[1]:
        return None
    return {"username": user, "host": server[1], "port": server[2] or 5060}


def conflicts(targets, theirs):
    """{carrier: [text]}: toolkit carriers that register the same user at the same host and port as one of
    VICIdial's registrations. chan_sip and PJSIP register alike at a SIP carrier (one contact per user);
    IAX2 registrations are their own."""
    out = {}
    for t in targets:
        if not t.get("registers") or not t.get("username") or not t.get("host"):
            continue
        family = "iax2" if t["driver"] == "iax2" else "sip"
        host = str(t["host"]).strip("[]").lower()
        for r in theirs:
            if ("iax2" if r["driver"] == "iax2" else "sip") != family:
                continue
            if r["username"] == t["username"] and r["host"] == host and int(r["port"]) == int(t["port"]):
                out.setdefault(t["name"], []).append(
                    "conflict: VICIdial's %s (line %d) also registers %s@%s:%s; two registrations fight over one "
                    "contact (set the VICIdial carrier to Active=N, or remove this one)"
                    % (r["file"], r["line"], r["username"], t["host"], t["port"]))
    return out


def absent_row(target, missing):
    """The row of an inventory carrier the dialer cannot show: not in its files (`missing`), or its driver
    not loaded. Failed at once: there is nothing to wait for."""
    key = "not_on_dialer" if target["name"] in missing else "driver_missing"
    return {"name": target["name"], "driver": target["driver"], "state": "absent", "verdict": "failed",
            "seconds": None, "cause": status.cause(key, driver=target["driver"])}


def lock_note(path, now=None):
    """A note when a run holds the dialer's lock (read only: nothing taken, nothing waited for)."""
    now = time.time() if now is None else now
    try:
        holder = lock.holder_of(path)
    except (IOError, OSError):
        return None
    if not holder:
        return None
    if float(holder.get("expires", 0)) <= now:
        return "lock: a stale lock of a run that is gone (%s)" % lock.describe(holder, now)
    return "lock: another run holds this dialer (%s): states may be mid-change" % lock.describe(holder, now)


def drift_line(change, unwritten):
    """One line naming what differs between the dialer's files and what the inventory renders, or None."""
    if not change.get("files") and not unwritten:
        return None
    return "drift: the dialer's files differ from what the inventory renders (added: %s; changed: %s; " \
           "removed: %s; files: %s): run site.yml" % (
               ", ".join(change.get("added") or []) or "-", ", ".join(change.get("changed") or []) or "-",
               ", ".join(change.get("removed") or []) or "-", ", ".join(unwritten or change.get("files") or []) or "-")


def annotate(results, conflicts_by_carrier, notes_by_carrier, dialer_notes):
    """Fold the notes into each row's cause (the report keeps its fields): the verdict's own cause first,
    then the carrier's conflicts and notes, then the dialer's."""
    out = []
    for r in results:
        mine = conflicts_by_carrier.get(r["name"], [])
        notes = ([r["cause"]] if r.get("cause") else []) + mine + notes_by_carrier.get(r["name"], []) \
            + list(dialer_notes)
        out.append(dict(r, cause="; ".join(notes) or None, conflicts=mine))
    return out
