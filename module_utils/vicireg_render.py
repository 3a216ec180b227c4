# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
"""Render the toolkit's own Asterisk include files from a carrier plan, one marked block per carrier.

Each carrier's lines sit between '; vicireg:begin NAME' and '; vicireg:end NAME', so the dialer side
(snapshot module) can tell which carriers a change touches, by digest, without shipping secrets.
Pure Python; used by the controller filters and by the module on the dialer (redaction, digests).
"""
from __future__ import absolute_import, division, print_function

import hashlib
import re

try:
    from ansible.module_utils import vicireg_grammar as grammar
except ImportError:
    import vicireg_grammar as grammar

__metaclass__ = type

# File (relative to the Asterisk config dir) -> the driver that reads it.
FILES = {
    "vicireg-sip-register.conf": "sip",
    "vicireg-sip-peers.conf": "sip",
    "vicireg-iax-register.conf": "iax2",
    "vicireg-iax-peers.conf": "iax2",
    "vicireg-pjsip.conf": "pjsip",
}
# Main file, include line, and where it goes: register files inside [general], the rest at the end,
# so that nothing in the main file after the include changes section.
INCLUDES = [
    ("sip.conf", "#tryinclude vicireg-sip-register.conf", "general", "sip"),
    ("sip.conf", "#tryinclude vicireg-sip-peers.conf", "end", "sip"),
    ("iax.conf", "#tryinclude vicireg-iax-register.conf", "general", "iax2"),
    ("iax.conf", "#tryinclude vicireg-iax-peers.conf", "end", "iax2"),
    ("pjsip.conf", "#tryinclude vicireg-pjsip.conf", "end", "pjsip"),
]
RELOAD = {"sip": "sip reload", "iax2": "iax2 reload", "pjsip": "module reload res_pjsip.so"}
HEADER = ("; Managed by Ansible (vicireg): carrier %s for %s. Do not edit; edit the inventory's\n"
          "; 'carriers' and run site.yml. VICIdial's own *-vicidial.conf files are left alone.\n")
BEGIN = re.compile(r"^; vicireg:begin (\S+)$")
END = re.compile(r"^; vicireg:end (\S+)$")
SECRET_KEYS = ("secret", "md5secret", "remotesecret", "password")
_SECRET_LINE = re.compile(r"^(\s*(?:%s)\s*=>?\s*).*$" % "|".join(SECRET_KEYS), re.IGNORECASE)
_REGISTER_LINE = re.compile(r"^\s*register\s*=>?", re.IGNORECASE)


def _esc(value):
    """Config values: a ';' would start a comment."""
    return str(value).replace(";", "\\;")


def _bare_host(host):
    return host[1:-1] if host.startswith("[") else host


def _options(item, skip=()):
    lines = []
    for key in sorted(item.get("options") or {}):
        if key not in skip:
            lines.append("%s=%s" % (key, _esc(item["options"][key])))
    return lines


def _sip_peer(item):
    reg = item.get("reg") or {}
    lines = ["[%s]" % item["name"], "type=peer", "host=%s" % item["host"], "port=%d" % item["port"]]
    if reg:
        lines.append("transport=%s" % reg["transport"])
        lines.append("defaultuser=%s" % (reg.get("authuser") or reg["username"]))
        lines.append("fromuser=%s" % reg["username"])
        if reg.get("secret"):
            lines.append("secret=%s" % _esc(reg["secret"]))
        if reg.get("domain"):
            lines.append("fromdomain=%s" % reg["domain"])
    lines += ["context=%s" % item["context"], "insecure=%s" % item["insecure"],
              "qualify=%s" % ("yes" if item["qualify"] else "no"), "dtmfmode=%s" % item["dtmfmode"],
              "disallow=all"]
    lines += ["allow=%s" % codec for codec in item["codecs"]]
    return lines + _options(item)


def _iax_peer(item):
    reg = item.get("reg") or {}
    lines = ["[%s]" % item["name"], "type=friend", "host=%s" % item["host"], "port=%d" % item["port"]]
    secret = reg.get("secret") or ""
    if reg:
        lines.append("username=%s" % reg["username"])
    if secret.startswith("["):
        lines += ["auth=rsa", "outkey=%s" % secret[1:-1]]
    elif secret:
        lines.append("secret=%s" % _esc(secret))
    lines += ["context=%s" % item["context"], "qualify=%s" % ("yes" if item["qualify"] else "no"),
              "requirecalltoken=no", "disallow=all"]
    lines += ["allow=%s" % codec for codec in item["codecs"]]
    return lines + _options(item)


def _section(name, options):
    out = ["[%s]" % name]
    for key, value in options:
        if value is not None:
            out.append("%s=%s" % (key, _esc(value)))
    return out


def _pjsip(item, transport_prefix, initial_delay=None):
    reg = item.get("reg") or {}
    name = item["name"]
    transport = transport_prefix + (reg.get("transport") or item.get("transport") or "udp")
    lines = []
    sections = item.get("pjsip")
    if sections:
        r = sections["registration"]
        lines += _section(sections["registration_name"], [
            ("type", "registration"), ("transport", r["transport"].replace("transport-", transport_prefix, 1)),
            ("outbound_auth", r.get("outbound_auth")), ("server_uri", r["server_uri"]),
            ("client_uri", r["client_uri"]), ("contact_user", r["contact_user"]),
            ("expiration", r.get("expiration")), ("retry_interval", 20), ("forbidden_retry_interval", 30),
            ("fatal_retry_interval", 30), ("max_retries", 10000), ("auth_rejection_permanent", "no"),
            ("max_random_initial_delay", initial_delay), ("line", "yes"), ("endpoint", name)])
        if sections.get("auth"):
            a = sections["auth"]
            lines += [""] + _section(sections["auth_name"], [
                ("type", "auth"), ("auth_type", "userpass"), ("username", a["username"]),
                ("password", a["password"])])
        lines.append("")
    host = item["host"]
    lines += _section(name, [
        ("type", "endpoint"), ("transport", transport), ("context", item["context"]),
        ("disallow", "all"), ("allow", ",".join(item["codecs"])),
        ("outbound_auth", sections["auth_name"] if sections and sections.get("auth") else None),
        ("aors", name), ("from_user", reg.get("username")), ("from_domain", reg.get("domain")),
        ("direct_media", "no"), ("dtmf_mode", "rfc4733" if item["dtmfmode"] == "rfc2833" else item["dtmfmode"]),
    ]) + _options(item)
    lines += [""] + _section(name, [
        ("type", "aor"), ("contact", "sip:%s:%d" % (host, item["port"])),
        ("qualify_frequency", 30 if item["qualify"] else 0)])
    lines += [""] + _section(name + "-identify", [
        ("type", "identify"), ("endpoint", name), ("match", _bare_host(host))])
    return lines


def carrier_blocks(plan, drivers=("sip", "pjsip", "iax2"), transport_prefix="transport-", initial_delay=None):
    """{file: {carrier: block text}} for the drivers present on the host (files always listed)."""
    out = {}
    for filename, driver in FILES.items():
        if driver in drivers:
            out[filename] = {}
    for item in plan:
        driver = item["driver"]
        if driver not in drivers:
            raise grammar.RegistrationError("carrier %r needs the %s driver, which is not loaded on this "
                                            "Asterisk" % (item["name"], driver))
        name = item["name"]
        if driver == "sip":
            if item.get("line"):
                out["vicireg-sip-register.conf"][name] = item["line"]
            out["vicireg-sip-peers.conf"][name] = "\n".join(_sip_peer(item))
        elif driver == "iax2":
            if item.get("line"):
                out["vicireg-iax-register.conf"][name] = item["line"]
            out["vicireg-iax-peers.conf"][name] = "\n".join(_iax_peer(item))
        else:
            out["vicireg-pjsip.conf"][name] = "\n".join(_pjsip(item, transport_prefix, initial_delay))
    return out


def render_file(filename, blocks):
    """The whole file text for one file's carrier blocks (sorted by carrier name: stable output)."""
    driver = FILES[filename]
    parts = [HEADER % ("registrations" if "register" in filename else "accounts", driver)]
    for name in sorted(blocks):
        parts.append("; vicireg:begin %s\n%s\n; vicireg:end %s\n" % (name, blocks[name], name))
    return "\n".join(parts)


def digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digests(text):
    """{carrier: digest of its block} for a file this toolkit wrote; unmarked text is ignored."""
    return {name: digest(body) for name, body in _blocks(text).items()}


def redact_config(text):
    """Config text with secrets masked: secret/password lines and register lines."""
    out = []
    for line in text.splitlines():
        if _REGISTER_LINE.match(line):
            protocol = "sip"
            out.append(grammar.redact_registration(line, protocol))
        elif _SECRET_LINE.match(line):
            out.append(_SECRET_LINE.sub(lambda m: m.group(1) + grammar.MASK, line))
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def changes(desired, current):
    """Compare desired {file: {carrier: digest}} with current; names and files, never content."""
    added, changed, removed, files = set(), set(), set(), []
    for filename in sorted(desired):
        want = desired[filename]
        have = current.get(filename) or {}
        touched = False
        for name, value in want.items():
            if name not in have:
                added.add(name)
                touched = True
            elif have[name] != value:
                changed.add(name)
                touched = True
        for name in have:
            if name not in want:
                removed.add(name)
                touched = True
        if touched:
            files.append(filename)
    changed -= added
    drivers = sorted({FILES[f] for f in files})
    return {"added": sorted(added), "changed": sorted(changed), "removed": sorted(removed - added - changed),
            "files": files, "drivers": drivers, "reload": [RELOAD[d] for d in drivers]}


_OPTION = re.compile(r"^\s*([A-Za-z_]+)\s*=>?\s*(.*?)\s*$")


def current_targets(files, default_timeout=20):
    """Targets (no secrets) for the carriers in the toolkit's files as they are now on the dialer.

    files: {filename: text}.  Used before a change, so that a rollback can confirm that what was
    registered before is registered again, by the old user and host even if the change renamed them.
    """
    targets = {}
    for filename, text in files.items():
        driver = FILES.get(filename)
        blocks = _blocks(text)
        for name, body in blocks.items():
            if filename.endswith("-register.conf"):
                line = body.strip()
                try:
                    reg = grammar.parse_registration(line, "iax2" if driver == "iax2" else "sip")
                except grammar.RegistrationError:
                    continue
                targets[name] = {"name": name, "driver": driver, "registers": True, "username": reg["username"],
                                 "domain": reg["domain"], "host": reg["host"], "port": reg["port"],
                                 "timeout": default_timeout}
            elif filename == "vicireg-pjsip.conf":
                opts = dict(m.groups() for m in map(_OPTION.match, body.splitlines()) if m)
                registers = "type=registration" in body.replace(" ", "")
                uri = re.search(r"^server_uri=sip:(\[[^\]]+\]|[^:;\s]+)(?::(\d+))?", body, re.MULTILINE)
                host = uri.group(1) if uri else opts.get("match")
                port = int(uri.group(2)) if uri and uri.group(2) else 5060
                targets[name] = {"name": name, "driver": "pjsip", "registers": registers, "username": None,
                                 "host": host, "port": port, "timeout": default_timeout}
            elif name not in targets:
                opts = dict(m.groups() for m in map(_OPTION.match, body.splitlines()) if m)
                targets[name] = {"name": name, "driver": driver, "registers": False, "username": None,
                                 "host": opts.get("host"), "port": int(opts.get("port") or 5060),
                                 "timeout": default_timeout}
    return [targets[k] for k in sorted(targets)]


def _blocks(text):
    out = {}
    name = None
    lines = []
    for line in text.splitlines():
        m = BEGIN.match(line)
        if m:
            name, lines = m.group(1), []
            continue
        m = END.match(line)
        if m and name == m.group(1):
            out[name] = "\n".join(lines)
            name = None
            continue
        if name is not None:
            lines.append(line)
    return out
