# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Carrier-level rules on top of the grammar: the preflight check and the render plan.

Pure Python and Ansible-free like the grammar, so the preflight can be unit-tested and so every
problem of every carrier is reported at once.  Messages name the carrier, never its secret.
"""
from __future__ import absolute_import, division, print_function

import re

try:  # inside an Ansible module on the dialer
    from ansible.module_utils import vicireg_fields as fields
    from ansible.module_utils import vicireg_grammar as grammar
except ImportError:  # controller side (filters, CLI, tests): loaded next to this file
    import vicireg_fields as fields
    import vicireg_grammar as grammar

__metaclass__ = type

NAME = re.compile(r"[A-Za-z0-9_-]+")
# VICIdial's carrier_id is VARCHAR(15).
NAME_MAX = 15
KNOWN_KEYS = frozenset([
    "name", "protocol", "registration", "active", "host", "port", "match", "context", "codecs", "dtmfmode",
    "qualify", "insecure", "fromdomain", "fromuser", "options", "timeout", "description", "pjsip_style",
])
# VICIdial offers both PJSIP shapes: plain sections (protocol PJSIP) and the config wizard (PJSIP_WIZ).
PJSIP_STYLES = ("sections", "wizard")
DEFAULTS = {
    "protocol": "sip", "registration": "", "active": True, "context": "trunkinbound",
    "codecs": ["ulaw", "alaw"], "dtmfmode": "rfc2833", "qualify": True, "insecure": "port,invite",
    "options": {}, "timeout": None, "match": None, "pjsip_style": "sections",
}
# Keys the toolkit writes itself, per driver: an 'options' entry may not set them again.
RESERVED = {
    "sip": frozenset(["type", "host", "port", "transport", "defaultuser", "fromuser", "secret", "fromdomain",
                      "context", "insecure", "qualify", "dtmfmode", "disallow", "allow", "username", "register"]),
    "pjsip": frozenset(["type", "transport", "context", "disallow", "allow", "outbound_auth", "aors", "from_user",
                        "from_domain", "direct_media", "dtmf_mode", "endpoint", "match", "contact",
                        "qualify_frequency", "password", "username"]),
    "iax2": frozenset(["type", "host", "port", "username", "secret", "auth", "outkey", "context", "qualify",
                       "requirecalltoken", "disallow", "allow"]),
}
# Words Asterisk or VICIdial already use as section names in the files the toolkit's are read with.
RESERVED_NAMES = frozenset(["general", "authentication", "globals", "default", "global", "system", "anonymous",
                            "astloop", "astblind", "astplay", "astloop2", "callnumberlimits"])


def is_active(carrier):
    """Active=Y (the default); a value the preflight refuses counts as active, so it is not removed."""
    return fields.active(carrier.get("active", True))[0] is not False


def driver_of(protocol, chan_sip=True):
    """The driver a carrier's protocol runs on: 'sip' becomes PJSIP where chan_sip is not available."""
    return "pjsip" if protocol == "sip" and not chan_sip else protocol


def problems_by_carrier(carriers, chan_sip=True):
    """[(carrier name or '#N', message)] for every problem of every carrier ([] when all is well)."""
    if not isinstance(carriers, list):
        return [(None, "must be a list of carrier dicts, got %s" % type(carriers).__name__)]
    problems = []
    seen = {}
    for index, carrier in enumerate(carriers):
        label = "#%d" % (index + 1)
        if not isinstance(carrier, dict):
            problems.append((label, "must be a dict, got %s" % type(carrier).__name__))
            continue
        name = carrier.get("name")
        if not isinstance(name, str) or not name:
            problems.append((label, "'name' is required"))
        elif len(name) > NAME_MAX or not NAME.fullmatch(name):
            problems.append((label, "name %s must be 1-%d letters, digits, '-' or '_' (VICIdial's carrier_id)"
                             % (fields._show(name), NAME_MAX)))
        else:
            label = name
            key = name.lower()
            if key in seen:
                problems.append((label, "duplicate name (also carrier #%d); names are compared without case, "
                                        "as Asterisk compares section names" % seen[key]))
            else:
                seen[key] = index + 1
            if key in RESERVED_NAMES:
                problems.append((label, "name %r is a section Asterisk or VICIdial already uses" % name))
        problems += [(label, p) for p in _carrier_problems(carrier, chan_sip)]
    return problems


def _carrier_problems(carrier, chan_sip):
    out = []
    unknown = sorted(str(k) for k in set(carrier) - KNOWN_KEYS)
    if unknown:
        out.append("unknown setting(s) %s" % ", ".join(fields._show(k, 30) for k in unknown))
    protocol = carrier.get("protocol", "sip")
    if protocol not in grammar.PROTOCOLS:
        return out + ["protocol must be one of %s, got %s" % (", ".join(grammar.PROTOCOLS), fields._show(protocol))]
    driver = driver_of(protocol, chan_sip)
    registration = carrier.get("registration") or ""
    if not isinstance(registration, str):
        return out + ["registration must be a string"]
    if registration.strip():
        try:
            parsed = grammar.parse_registration(registration, protocol)
        except grammar.RegistrationError as exc:
            out.append(str(exc))
        else:
            if not parsed["secret"]:
                out.append("the registration string has no secret; a carrier that registers "
                           "authenticates with user:secret (an IP-authenticated carrier leaves "
                           "registration empty and sets host)")
    elif not carrier.get("host"):
        out.append("no registration string and no host: an IP-authenticated carrier needs "
                   "'host' so the dialer can reach and match it")
    checks = [
        ("host", fields.host), ("port", fields.port), ("timeout", fields.timeout),
        ("context", fields.context), ("codecs", fields.codecs), ("insecure", fields.insecure),
        ("dtmfmode", lambda v: fields.dtmfmode(v, driver)),
        ("qualify", lambda v: fields.qualify(v)[1]), ("match", lambda v: fields.match(v)[1]),
        ("fromdomain", fields.host), ("description", lambda v: fields.text(v, "description")),
        ("active", lambda v: fields.active(v)[1]),
        ("fromuser", fields.user),
    ]
    for key, check in checks:
        if carrier.get(key) is not None:
            problem = check(carrier[key])
            if problem:
                out.append(problem)
    if carrier.get("options") is not None:
        out += fields.options(carrier["options"], driver, RESERVED[driver])
    style = carrier.get("pjsip_style")
    if style is not None and style not in PJSIP_STYLES:
        out.append("pjsip_style must be one of %s, got %s" % (", ".join(PJSIP_STYLES), fields._show(style)))
    elif style == "wizard" and driver != "pjsip":
        out.append("pjsip_style wizard needs PJSIP: this carrier runs on %s (use protocol pjsip)"
                   % ("chan_sip" if driver == "sip" else "chan_iax2"))
    if carrier.get("match") and driver != "pjsip":
        out.append("match needs PJSIP: %s matches a carrier's calls by its host only (use protocol pjsip, or "
                   "one carrier per source address)" % ("chan_sip" if driver == "sip" else "chan_iax2"))
    return out


def carrier_problems(carriers, chan_sip=True):
    """Every problem of every carrier, as a list of messages ([] when all is well)."""
    return ["%s: %s" % ("carriers" if label is None else "carrier " + (label if label.startswith("#") else repr(label)),
                        message) for label, message in problems_by_carrier(carriers, chan_sip)]


def carrier_plan(carriers, chan_sip=True, default_timeout=20):
    """Active carriers, normalised for the templates and the verify module.

    A 'sip' carrier becomes PJSIP where chan_sip is not available (Asterisk 21+).
    Raises RegistrationError listing every problem when carrier_problems finds any.
    """
    problems = carrier_problems(carriers, chan_sip)
    if problems:
        raise grammar.RegistrationError("; ".join(problems))
    plan = []
    for carrier in carriers:
        if carrier.get("active") is not None and not is_active(carrier):
            continue
        item = dict(DEFAULTS)
        # An explicit null (YAML '~') means the default, as the preflight reads it.
        item.update((k, v) for k, v in carrier.items() if v is not None)
        item["active"] = True
        protocol = item["protocol"]
        item["driver"] = driver = driver_of(protocol, chan_sip)
        item["timeout"] = item["timeout"] or default_timeout
        item["qualify"] = fields.qualify(item["qualify"])[0]
        item["match"] = fields.match(item["match"])[0] if item["match"] else []
        item["codecs"] = [c.lower() for c in item["codecs"]]
        item["dtmfmode"] = item["dtmfmode"].lower()
        item["insecure"] = item["insecure"].lower()
        registration = (item.get("registration") or "").strip()
        item["registers"] = bool(registration)
        if registration:
            parse_as = "iax2" if protocol == "iax2" else "sip"
            parsed = grammar.parse_registration(registration, parse_as)
            item["reg"] = parsed
            item["redacted"] = grammar.redact_registration(registration, parse_as)
            item["line"] = grammar.registration_line(parsed, parse_as)
            if driver == "pjsip":
                item["pjsip"] = grammar.pjsip_registration(parsed, item["name"], "sip")
            item.setdefault("host", None)
            item["host"] = item["host"] or parsed["host"]
            item["port_given"] = bool(item.get("port")) or parsed["port_given"]
            item["port"] = item.get("port") or parsed["port"]
        else:
            item["reg"] = None
            item["redacted"] = ""
            item["line"] = None
            item["port_given"] = bool(item.get("port"))
            item["port"] = item.get("port") or (4569 if protocol == "iax2" else 5060)
        plan.append(item)
    return plan


def registration_name(item):
    """The name of a PJSIP carrier's registration object (what 'pjsip show registrations' lists)."""
    if item["driver"] != "pjsip" or not item.get("registers"):
        return None
    return item["name"] + ("-reg-0" if item.get("pjsip_style") == "wizard" else "-reg")


def section_names(item):
    """The sections (PJSIP: the objects) a planned carrier defines in its driver's files."""
    name = item["name"]
    if item["driver"] != "pjsip":
        return [name]
    if item.get("pjsip_style") == "wizard":
        # The wizard's objects: endpoint and aor NAME, NAME-oauth, NAME-identify, NAME-reg-0.
        return [name, name + "-oauth", name + "-identify"] + ([name + "-reg-0"] if item.get("registers") else [])
    out = [name]
    sections = item.get("pjsip") or {}
    if sections.get("registration_name"):
        out.append(sections["registration_name"])
    if sections.get("auth_name"):
        out.append(sections["auth_name"])
    return out + [name + "-identify"]


def section_problems(plan, existing, transport_prefix="transport-"):
    """Carrier sections that collide with a section the dialer already has (its own sip.conf, VICIdial's
    generated *-vicidial.conf, PJSIP transports ...) or with another carrier's; names compared without case."""
    problems = []
    mine = {}
    for item in plan:
        driver = item["driver"]
        have = {n.lower(): n for n in existing.get(driver) or []}
        for section in section_names(item):
            key = (driver, section.lower())
            if key in mine and mine[key] != item["name"]:
                problems.append("carrier %r: section [%s] is also defined by carrier %r"
                                % (item["name"], section, mine[key]))
            mine[key] = item["name"]
            if section.lower() in have:
                problems.append("carrier %r: section [%s] already exists in the dialer's %s config (as [%s]); "
                                "rename the carrier" % (item["name"], section, driver, have[section.lower()]))
            elif driver == "pjsip" and section.lower().startswith(transport_prefix.lower()):
                problems.append("carrier %r: section [%s] looks like a PJSIP transport name" % (item["name"], section))
    return problems


def mask_secrets(text, carriers):
    """text with every secret the carriers hold replaced by the mask (longest first)."""
    for secret in sorted(secret_values(carriers), key=len, reverse=True):
        text = text.replace(secret, grammar.MASK)
    return text


def secret_values(carriers):
    """Every secret the carriers hold, as written (and with ';' escaped as Asterisk reads it)."""
    found = set()
    for carrier in carriers if isinstance(carriers, list) else []:
        if not isinstance(carrier, dict):
            continue
        registration = carrier.get("registration")
        if isinstance(registration, str) and registration.strip():
            try:
                secret = grammar.parse_registration(registration, carrier.get("protocol") if carrier.get(
                    "protocol") in grammar.PROTOCOLS else "sip")["secret"]
            except (grammar.RegistrationError, TypeError):
                # Unparsable: whatever may be the secret (the span the grammar masks in messages).
                region = grammar._mask_region(registration, "iax2" if carrier.get("protocol") == "iax2" else "sip")
                secret = registration[region[0]:region[1]] if region else None
            if secret:
                found.update([secret, secret.replace(";", "\\;")])
        options = carrier.get("options")
        if isinstance(options, dict):
            for key, value in options.items():
                if isinstance(key, str) and key.lower() in fields.SECRET_OPTIONS and isinstance(value, str) and value:
                    found.add(value)
    return found


def verify_targets(plan):
    """What the verify module needs per carrier, without any secret."""
    out = []
    for item in plan:
        reg = item.get("reg") or {}
        out.append({
            "name": item["name"],
            "driver": item["driver"],
            "registers": item["registers"],
            "registration": registration_name(item),
            "username": reg.get("username"),
            "domain": reg.get("domain"),
            "qualify": item.get("qualify", True),  # True, False, or milliseconds
            "host": item["host"],
            "port": item["port"],
            # No port written: Asterisk looks up SRV records first (the cause of a failure says so).
            "port_given": item.get("port_given", True),
            "transport": reg.get("transport") or "udp",
            "timeout": item["timeout"],
        })
    return out
