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
    from ansible.module_utils import vicireg_conffile as conffile
    from ansible.module_utils import vicireg_fields as fields
    from ansible.module_utils import vicireg_grammar as grammar
except ImportError:
    import vicireg_conffile as conffile
    import vicireg_fields as fields
    import vicireg_grammar as grammar

__metaclass__ = type

# File (relative to the Asterisk config dir) -> the driver that reads it.
FILES = {
    "vicireg-sip-register.conf": "sip",
    "vicireg-sip-peers.conf": "sip",
    "vicireg-iax-register.conf": "iax2",
    "vicireg-iax-peers.conf": "iax2",
    "vicireg-pjsip.conf": "pjsip",
    "vicireg-pjsip-wizard.conf": "pjsip",
}
# Main file, include line, and where it goes: register files inside [general], the rest at the end,
# so that nothing in the main file after the include changes section.
INCLUDES = [
    ("sip.conf", "#tryinclude vicireg-sip-register.conf", "general", "sip"),
    ("sip.conf", "#tryinclude vicireg-sip-peers.conf", "end", "sip"),
    ("iax.conf", "#tryinclude vicireg-iax-register.conf", "general", "iax2"),
    ("iax.conf", "#tryinclude vicireg-iax-peers.conf", "end", "iax2"),
    ("pjsip.conf", "#tryinclude vicireg-pjsip.conf", "end", "pjsip"),
    ("pjsip_wizard.conf", "#tryinclude vicireg-pjsip-wizard.conf", "end", "pjsip"),
]
# Main files the toolkit may create when a dialer has none (res_pjsip_config_wizard reads an absent
# pjsip_wizard.conf as empty; VICIdial's PJSIP_WIZ carriers live in pjsip_wizard-vicidial.conf).
CREATE_MAIN = frozenset(["pjsip_wizard.conf"])


def includes(drivers):
    """The include lines the main config files need, for the drivers loaded (as vicireg_write.plan takes them)."""
    return [{"file": f, "line": line, "where": where, "driver": d} for f, line, where, d in INCLUDES if d in drivers]


RELOAD = {"sip": "sip reload", "iax2": "iax2 reload", "pjsip": "module reload res_pjsip.so"}
HEADER = ("; Managed by Ansible (vicireg): carrier %s for %s. Do not edit; edit the inventory's\n"
          "; 'carriers' and run site.yml. VICIdial's own *-vicidial.conf files are left alone.\n")
BEGIN = re.compile(r"^; vicireg:begin (\S+)$")
END = re.compile(r"^; vicireg:end (\S+)$")
SECRET_KEYS = tuple(sorted(fields.SECRET_OPTIONS))
_SECRET_LINE = re.compile(r"^(\s*(?:[a-z_]+/)?(?:%s)\s*=>?\s*).*$" % "|".join(SECRET_KEYS), re.IGNORECASE)
_REGISTER_LINE = re.compile(r"^\s*register\s*=>?", re.IGNORECASE)


def _esc(value):
    """Config values: a ';' would start a comment."""
    return str(value).replace(";", "\\;")


def _bare_host(host):
    return host[1:-1] if host.startswith("[") else host


class Secret(str):
    """A value that is a secret: written through the renderer's secret hook (see carrier_sections)."""

    __slots__ = ()


def _options(item, skip=()):
    out = []
    for key in sorted(item.get("options") or {}):
        if key not in skip:
            value = fields.option_value(item["options"][key])
            out.append((key, Secret(value) if key.lower() in fields.SECRET_OPTIONS else value))
    return out


def _qualify(item):
    q = item["qualify"]
    return q if not isinstance(q, bool) else ("yes" if q else "no")


def _sip_peer(item):
    reg = item.get("reg") or {}
    opts = [("type", "peer"), ("host", item["host"]), ("port", item["port"])]
    if reg:
        opts += [("transport", reg["transport"]), ("defaultuser", reg.get("authuser") or reg["username"]),
                 ("fromuser", reg["username"])]
        if reg.get("secret"):
            opts.append(("secret", Secret(reg["secret"])))
        if reg.get("domain"):
            opts.append(("fromdomain", reg["domain"]))
    opts += [("context", item["context"]), ("insecure", item["insecure"]), ("qualify", _qualify(item)),
             ("dtmfmode", item["dtmfmode"]), ("disallow", "all")]
    opts += [("allow", codec) for codec in item["codecs"]]
    return [(item["name"], opts + _options(item))]


def _iax_peer(item):
    reg = item.get("reg") or {}
    opts = [("type", "friend"), ("host", item["host"]), ("port", item["port"])]
    secret = reg.get("secret") or ""
    if reg:
        opts.append(("username", reg["username"]))
    if secret.startswith("["):
        opts += [("auth", "rsa"), ("outkey", secret[1:-1])]
    elif secret:
        opts.append(("secret", Secret(secret)))
    opts += [("context", item["context"]), ("qualify", _qualify(item)), ("requirecalltoken", "no"),
             ("disallow", "all")]
    opts += [("allow", codec) for codec in item["codecs"]]
    return [(item["name"], opts + _options(item))]


def _pjsip(item, transport_prefix, initial_delay=None):
    reg = item.get("reg") or {}
    name = item["name"]
    transport = transport_prefix + (reg.get("transport") or "udp")
    out = []
    sections = item.get("pjsip")
    if sections:
        r = sections["registration"]
        out.append((sections["registration_name"], [(k, v) for k, v in [
            ("type", "registration"), ("transport", r["transport"].replace("transport-", transport_prefix, 1)),
            ("outbound_auth", r.get("outbound_auth")), ("server_uri", r["server_uri"]),
            ("client_uri", r["client_uri"]), ("outbound_proxy", r.get("outbound_proxy")),
            ("contact_user", r["contact_user"]),
            ("expiration", r.get("expiration"))] + _REGISTRATION_POLICY + [
            ("max_random_initial_delay", initial_delay), ("line", "yes"), ("endpoint", name)] if v is not None]))
        if sections.get("auth"):
            a = sections["auth"]
            out.append((sections["auth_name"], [("type", "auth"), ("auth_type", "userpass"),
                                                ("username", a["username"]), ("password", Secret(a["password"]))]))
    host = item["host"]
    dtmf = "rfc4733" if item["dtmfmode"] == "rfc2833" else item["dtmfmode"]
    endpoint = [("type", "endpoint"), ("transport", transport), ("context", item["context"]),
                ("disallow", "all"), ("allow", ",".join(item["codecs"]))]
    if sections and sections.get("auth"):
        endpoint.append(("outbound_auth", sections["auth_name"]))
    endpoint.append(("aors", name))
    if reg.get("username"):
        endpoint.append(("from_user", reg["username"]))
    if reg.get("domain"):
        endpoint.append(("from_domain", reg["domain"]))
    endpoint += [("direct_media", "no"), ("dtmf_mode", dtmf)]
    out.append((name, endpoint + _options(item)))
    uri_host = "[%s]" % host if ":" in host and not host.startswith("[") else host
    # No port unless one was written (or differs from 5060): a name then follows its SRV records.
    port = ":%d" % item["port"] if item.get("port_given", True) and item["port"] != 5060 else ""
    out.append((name, [("type", "aor"), ("contact", "sip:%s%s" % (uri_host, port)),
                       ("qualify_frequency", 30 if item["qualify"] is not False else 0)]))
    sources = [_bare_host(host)] + [m for m in item.get("match") or [] if m != _bare_host(host)]
    out.append((name + "-identify", [("type", "identify"), ("endpoint", name), ("match", ",".join(sources))]))
    return out


# What the toolkit's registrations ask for besides the mapping (sections and wizard alike).
_REGISTRATION_POLICY = [("retry_interval", 20), ("forbidden_retry_interval", 30), ("fatal_retry_interval", 30),
                        ("max_retries", 10000), ("auth_rejection_permanent", "no")]


def _pjsip_wizard(item, transport_prefix, initial_delay=None):
    """One pjsip_wizard.conf section for a carrier (VICIdial's PJSIP_WIZ shape), registering and
    reached exactly as the plain sections do: the wizard's own URIs are replaced by the mapping's."""
    reg = item.get("reg") or {}
    name = item["name"]
    transport = transport_prefix + (reg.get("transport") or "udp")
    host = item["host"]
    uri_host = "[%s]" % host if ":" in host and not host.startswith("[") else host
    port = ":%d" % item["port"] if item.get("port_given", True) and item["port"] != 5060 else ""
    sections = item.get("pjsip") or {}
    auth = sections.get("auth")
    opts = [("type", "wizard"), ("transport", transport), ("remote_hosts", _bare_host(host)),
            # A literal pattern: the contact (and the URIs below) as the plain sections write them.
            ("contact_pattern", "sip:%s%s" % (uri_host, port)),
            ("sends_auth", "yes" if auth else "no"), ("sends_registrations", "yes" if sections else "no")]
    if auth:
        opts += [("outbound_auth/username", auth["username"]), ("outbound_auth/password", Secret(auth["password"]))]
    if sections:
        r = sections["registration"]
        opts += [("server_uri_pattern", r["server_uri"]), ("client_uri_pattern", r["client_uri"])]
        opts += [("registration/" + k, v) for k, v in [
            ("outbound_proxy", r.get("outbound_proxy")), ("contact_user", r["contact_user"]),
            ("expiration", r.get("expiration"))] + _REGISTRATION_POLICY + [
            ("max_random_initial_delay", initial_delay), ("line", "yes"), ("endpoint", name)] if v is not None]
    dtmf = "rfc4733" if item["dtmfmode"] == "rfc2833" else item["dtmfmode"]
    endpoint = [("context", item["context"]), ("disallow", "all"), ("allow", ",".join(item["codecs"]))]
    if reg.get("username"):
        endpoint.append(("from_user", reg["username"]))
    if reg.get("domain"):
        endpoint.append(("from_domain", reg["domain"]))
    endpoint += [("direct_media", "no"), ("dtmf_mode", dtmf)] + _options(item)
    opts += [("endpoint/" + k, v) for k, v in endpoint]
    opts.append(("aor/qualify_frequency", 30 if item["qualify"] is not False else 0))
    extra = [m for m in item.get("match") or [] if m != _bare_host(host)]
    if extra:
        opts.append(("identify/match", ",".join(extra)))
    return [(name, opts)]


def carrier_sections(plan, drivers=("sip", "pjsip", "iax2"), transport_prefix="transport-", initial_delay=None):
    """{file: {carrier: [(section or None, [(key, value)])]}} for the drivers present on the host.

    A section of None holds lines read in the including file's [general] (register lines).
    """
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
        if driver in ("sip", "iax2"):
            prefix = "vicireg-sip-" if driver == "sip" else "vicireg-iax-"
            if item.get("line"):
                value = item["line"].split("=>", 1)[1].strip().replace("\\;", ";")
                out[prefix + "register.conf"][name] = [(None, [("register", RegisterValue(value, driver))])]
            out[prefix + "peers.conf"][name] = (_sip_peer if driver == "sip" else _iax_peer)(item)
        elif item.get("pjsip_style") == "wizard":
            out["vicireg-pjsip-wizard.conf"][name] = _pjsip_wizard(item, transport_prefix, initial_delay)
        else:
            out["vicireg-pjsip.conf"][name] = _pjsip(item, transport_prefix, initial_delay)
    return out


class RegisterValue(str):
    """A register line's value (it holds the secret: the secret hook masks that part only)."""

    __slots__ = ("driver",)

    def __new__(cls, value, driver):
        self = str.__new__(cls, value)
        self.driver = driver
        return self


def format_sections(sections, secret=None):
    """Text for [(section, [(key, value)])]; secret(value, written) -> what to write for a secret."""
    lines = []
    for name, options in sections:
        if name is not None:
            if lines:
                lines.append("")
            lines.append("[%s]" % name)
        for key, value in options:
            written = _esc(value)
            # 'key=>x' is read as key 'key', value 'x' (the '>' makes '=>'): keep a '>' value apart.
            # Decided on the real value, so the file written reads as the file checked.
            sep = " => " if key == "register" else (" = " if written.startswith(">") else "=")
            if secret is not None and isinstance(value, RegisterValue):
                span = grammar._parse(written, "iax2" if value.driver == "iax2" else "sip")[1]
                if span:
                    written = written[:span[0]] + secret(written[span[0]:span[1]]) + written[span[1]:]
            elif secret is not None and isinstance(value, Secret):
                written = secret(written)
            lines.append("%s%s%s" % (key, sep, written))
    return "\n".join(lines)


def carrier_blocks(plan, drivers=("sip", "pjsip", "iax2"), transport_prefix="transport-", initial_delay=None):
    """{file: {carrier: block text}} for the drivers present on the host (files always listed)."""
    return {f: {c: format_sections(secs) for c, secs in by_carrier.items()}
            for f, by_carrier in carrier_sections(plan, drivers, transport_prefix, initial_delay).items()}


def expected_structure(by_carrier):
    """What a file of these carriers must read back as (vicireg_conffile.structure), in file order."""
    out = []
    for name in sorted(by_carrier):
        for section, options in by_carrier[name]:
            opts = [(k, str(v)) for k, v in options]
            if section is None and out and out[-1][0] is None:
                out[-1][1].extend(opts)
            else:
                out.append((section, opts))
    return out


def render_files(plan, drivers=("sip", "pjsip", "iax2"), transport_prefix="transport-", initial_delay=None):
    """Every file's text, proven to read back as exactly the intended sections and keys.

    Returns {'files': {name: text}, 'templates': {name: text with each secret replaced by a token},
    'secrets': {token: secret as written}, 'digests': {name: {carrier: sha256 of its block}}}.
    Raises RegistrationError naming the file when a text would be read otherwise (never its content).
    """
    sections = carrier_sections(plan, drivers, transport_prefix, initial_delay)
    secrets = {}
    files, templates, digests = {}, {}, {}
    for filename, by_carrier in sections.items():
        files[filename] = render_file(filename, {c: format_sections(s) for c, s in by_carrier.items()})
    # Tokens no inventory value can predict: named after a digest of the very texts they stand in
    # (a value holding a token would change that digest), and the same for the same input, so that
    # a lazily templated render gives the same templates and secrets each time it is read.
    nonce = digest("\0".join(files[f] for f in sorted(files)))[:16]

    def token(written):
        key = "@@vicireg-%s-%d@@" % (nonce, len(secrets) + 1)
        secrets[key] = written
        return key

    for filename, by_carrier in sections.items():
        blocks = {c: format_sections(s) for c, s in by_carrier.items()}
        text = files[filename]
        problem = conffile.mismatch(text, expected_structure(by_carrier))
        if problem:
            raise grammar.RegistrationError("%s would not be read as rendered (%s): nothing was written"
                                            % (filename, problem))
        templates[filename] = render_file(filename, {c: format_sections(s, token) for c, s in by_carrier.items()})
        if fill_template(templates[filename], secrets) != text:
            raise grammar.RegistrationError("%s: its template does not fill back to the text checked; nothing "
                                            "was written" % filename)
        digests[filename] = {c: digest(b) for c, b in blocks.items()}
    return {"files": files, "templates": templates, "secrets": secrets, "digests": digests}


_TOKEN = re.compile(r"@@vicireg-[0-9a-f]+-[0-9]+@@")


def fill_template(text, secrets):
    """The real text of a template (on the dialer): every token replaced by its secret, in one pass
    (a secret that looks like a token is never filled again)."""
    return _TOKEN.sub(lambda m: secrets.get(m.group(), m.group()), text)


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
                                 "port_given": reg["port_given"], "transport": reg["transport"] or "udp",
                                 "timeout": default_timeout}
            elif filename in ("vicireg-pjsip.conf", "vicireg-pjsip-wizard.conf"):
                wizard = filename == "vicireg-pjsip-wizard.conf"
                opts = dict(m.groups() for m in map(_OPTION.match, body.splitlines()) if m)
                registers = ("sends_registrations=yes" if wizard else "type=registration") in body.replace(" ", "")
                # Where it is sent: the outbound proxy when there is one, else the server URI.
                uri = (re.search(r"^(?:registration/)?outbound_proxy=sip:(\[[^\]]+\]|[^:;\\\s]+)(?::(\d+))?", body,
                                 re.MULTILINE) or
                       re.search(r"^(?:server_uri|server_uri_pattern)=sip:(\[[^\]]+\]|[^:;\s]+)(?::(\d+))?", body,
                                 re.MULTILINE))
                host = uri.group(1) if uri else opts.get("remote_hosts" if wizard else "match")
                port = int(uri.group(2)) if uri and uri.group(2) else 5060
                targets[name] = {"name": name, "driver": "pjsip", "registers": registers, "username": None,
                                 "registration": (name + ("-reg-0" if wizard else "-reg")) if registers else None,
                                 "host": host, "port": port, "port_given": bool(uri and uri.group(2)),
                                 "transport": "udp", "timeout": default_timeout}
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
