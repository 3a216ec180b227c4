# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Carrier-level rules on top of the grammar: the preflight check and the render plan.

Pure Python and Ansible-free like the grammar, so the preflight can be unit-tested and so every
problem of every carrier is reported at once.  Messages name the carrier, never its secret.
"""
from __future__ import absolute_import, division, print_function

import re

try:  # inside an Ansible module on the dialer
    from ansible.module_utils import vicireg_grammar as grammar
except ImportError:  # controller side (filters, CLI, tests): loaded next to this file
    import vicireg_grammar as grammar

__metaclass__ = type

NAME = re.compile(r"[A-Za-z0-9_-]+")
# VICIdial's carrier_id is VARCHAR(15).
NAME_MAX = 15
KNOWN_KEYS = frozenset([
    "name", "protocol", "registration", "active", "host", "port", "context", "codecs", "dtmfmode",
    "qualify", "insecure", "fromdomain", "fromuser", "options", "timeout", "description",
])
DEFAULTS = {
    "protocol": "sip", "registration": "", "active": True, "context": "trunkinbound",
    "codecs": ["ulaw", "alaw"], "dtmfmode": "rfc2833", "qualify": True, "insecure": "port,invite",
    "options": {}, "timeout": None,
}


def _truthy(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("y", "yes", "true", "1", "on")
    return bool(value)


def carrier_problems(carriers):
    """Every problem of every carrier, as a list of messages ([] when all is well)."""
    if not isinstance(carriers, list):
        return ["'carriers' must be a list of carrier dicts, got %s" % type(carriers).__name__]
    problems = []
    seen = {}
    for index, carrier in enumerate(carriers):
        label = "carrier #%d" % (index + 1)
        if not isinstance(carrier, dict):
            problems.append("%s: must be a dict, got %s" % (label, type(carrier).__name__))
            continue
        name = carrier.get("name")
        if not isinstance(name, str) or not name:
            problems.append("%s: 'name' is required" % label)
            name = None
        else:
            label = "carrier %r" % name
            if len(name) > NAME_MAX:
                problems.append("%s: name has %d characters, VICIdial's carrier_id holds at most %d"
                                % (label, len(name), NAME_MAX))
            if not NAME.fullmatch(name):
                problems.append("%s: name may only hold letters, digits, '-' and '_'" % label)
            key = name.lower()
            if key in seen:
                problems.append("%s: duplicate name (also carrier #%d); names are compared without case, "
                                "as Asterisk compares section names" % (label, seen[key]))
            else:
                seen[key] = index + 1
        unknown = sorted(set(carrier) - KNOWN_KEYS)
        if unknown:
            problems.append("%s: unknown setting(s) %s" % (label, ", ".join(unknown)))
        protocol = carrier.get("protocol", "sip")
        if protocol not in grammar.PROTOCOLS:
            problems.append("%s: protocol must be one of %s, got %r"
                            % (label, ", ".join(grammar.PROTOCOLS), protocol))
            continue
        registration = carrier.get("registration") or ""
        if not isinstance(registration, str):
            problems.append("%s: registration must be a string" % label)
            continue
        if registration.strip():
            try:
                parsed = grammar.parse_registration(registration, protocol)
            except grammar.RegistrationError as exc:
                problems.append("%s: %s" % (label, exc))
                continue
            if not parsed["secret"]:
                problems.append("%s: the registration string has no secret; a carrier that registers "
                                "authenticates with user:secret (an IP-authenticated carrier leaves "
                                "registration empty and sets host)" % label)
        elif not carrier.get("host"):
            problems.append("%s: no registration string and no host: an IP-authenticated carrier needs "
                            "'host' so the dialer can reach and match it" % label)
        port = carrier.get("port")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
            problems.append("%s: port must be a number from 1 to 65535" % label)
        host = carrier.get("host")
        if host:
            try:
                grammar.parse_registration("x@%s" % host, "pjsip")
            except grammar.RegistrationError:
                problems.append("%s: host %r is not a valid host name or address" % (label, host))
        timeout = carrier.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or timeout <= 0):
            problems.append("%s: timeout must be a positive number of seconds" % label)
    return problems


def carrier_plan(carriers, chan_sip=True, default_timeout=20):
    """Active carriers, normalised for the templates and the verify module.

    A 'sip' carrier becomes PJSIP where chan_sip is not available (Asterisk 21+).
    Raises RegistrationError listing every problem when carrier_problems finds any.
    """
    problems = carrier_problems(carriers)
    if problems:
        raise grammar.RegistrationError("; ".join(problems))
    plan = []
    for carrier in carriers:
        if not _truthy(carrier.get("active", True)):
            continue
        item = dict(DEFAULTS)
        item.update(carrier)
        item["active"] = True
        protocol = item["protocol"]
        if protocol == "sip" and not chan_sip:
            protocol = "pjsip"
        item["driver"] = protocol
        item["timeout"] = item["timeout"] or default_timeout
        registration = (item.get("registration") or "").strip()
        item["registers"] = bool(registration)
        if registration:
            parse_as = "iax2" if protocol == "iax2" else "sip"
            parsed = grammar.parse_registration(registration, parse_as)
            item["reg"] = parsed
            item["redacted"] = grammar.redact_registration(registration, parse_as)
            item["line"] = grammar.registration_line(parsed, parse_as)
            if protocol == "pjsip":
                item["pjsip"] = grammar.pjsip_registration(parsed, item["name"], "sip")
            item.setdefault("host", None)
            item["host"] = item["host"] or parsed["host"]
            item["port"] = item.get("port") or parsed["port"]
        else:
            item["reg"] = None
            item["redacted"] = ""
            item["line"] = None
            item["port"] = item.get("port") or (4569 if protocol == "iax2" else 5060)
        plan.append(item)
    return plan


def verify_targets(plan):
    """What the verify module needs per carrier, without any secret."""
    out = []
    for item in plan:
        reg = item.get("reg") or {}
        out.append({
            "name": item["name"],
            "driver": item["driver"],
            "registers": item["registers"],
            "username": reg.get("username"),
            "domain": reg.get("domain"),
            "qualify": bool(item.get("qualify", True)),
            "host": item["host"],
            "port": item["port"],
            "timeout": item["timeout"],
        })
    return out
