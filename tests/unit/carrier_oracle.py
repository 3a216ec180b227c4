"""Shared by the hostile-field tests: valid base carriers of each kind, hostile values,
and an oracle for rendered files that does not reuse the renderer's own expectations.

Not a test module (pytest collects test_*.py only); the tests import it from this folder.
"""
import unicodedata

import pytest
from hypothesis import strategies as st

import vicireg_carriers as carriers
import vicireg_conffile as conffile
import vicireg_fields as fields
import vicireg_grammar as grammar
import vicireg_render as render

ALL_DRIVERS = ("sip", "pjsip", "iax2")
FIELDS = ("name", "protocol", "registration", "active", "host", "port", "match", "context", "codecs",
          "dtmfmode", "qualify", "insecure", "options", "timeout", "description", "fromuser", "fromdomain")

# Every field set, valid: base carriers of each kind.  (chan_sip available?, carrier)
BASES = {
    "sip-reg": (True, {
        "name": "acme", "protocol": "sip", "registration": "1234:s3cretA@sip.acme.example:5060/1234",
        "active": True, "host": "sip.acme.example", "port": 5060, "context": "trunkinbound",
        "codecs": ["ulaw", "alaw"], "dtmfmode": "rfc2833", "qualify": "Y", "insecure": "port,invite",
        "options": {"nat": "force_rport,comedia", "md5secret": "Md5Sekr1t"}, "timeout": 30,
        "description": "Acme SIP", "fromuser": "1234", "fromdomain": "sip.acme.example"}),
    "sip-ip": (True, {
        "name": "ipauth", "protocol": "sip", "registration": "", "active": "Y", "host": "10.9.8.7",
        "port": 5060, "context": "trunkinbound", "codecs": ["ulaw"],
        "dtmfmode": "info", "qualify": 2000, "insecure": "invite", "options": {"directmedia": False},
        "timeout": 20, "description": "IP auth", "fromuser": "dialer", "fromdomain": "dialer.example"}),
    "sip-as-pjsip": (False, {
        "name": "acme21", "protocol": "sip", "registration": "tcp://5678:s3cretB@pj.acme.example:5080/5678~300",
        "active": True, "host": "pj.acme.example", "port": 5080, "match": ["192.0.2.0/24"],
        "context": "trunkinbound", "codecs": ["alaw", "g722"], "dtmfmode": "rfc2833", "qualify": True,
        "insecure": "port", "options": {"rtp_symmetric": True}, "timeout": 45, "description": "on 21+",
        "fromuser": "5678", "fromdomain": "pj.acme.example"}),
    "pjsip-ip": (True, {
        "name": "pjip", "protocol": "pjsip", "registration": "", "active": True, "host": "192.0.2.10",
        "port": 5061, "match": ["192.0.2.0/24", "2001:db8::/48"], "context": "from-pjip",
        "codecs": ["ulaw"], "dtmfmode": "auto_info", "qualify": "N", "insecure": "no",
        "options": {"language": "en", "callerid": "Acme <100>"}, "timeout": 10, "description": "",
        "fromuser": "x", "fromdomain": "pjip.example"}),
    "iax2-reg": (True, {
        "name": "iaxco", "protocol": "iax2", "registration": "user:s3cretC@iax.example", "active": True,
        "host": "iax.example", "port": 4569, "context": "trunkinbound", "codecs": ["gsm", "ulaw"],
        "dtmfmode": "rfc2833", "qualify": "yes", "insecure": "port,invite",
        "options": {"trunk": True, "dbsecret": "fam/Key9"}, "timeout": 20, "description": "IAX",
        "fromuser": "user", "fromdomain": "iax.example"}),
    "iax2-ip": (True, {
        "name": "iaxip", "protocol": "iax2", "registration": "", "active": True, "host": "198.51.100.7",
        "context": "trunkinbound", "codecs": ["ulaw"], "qualify": False, "options": {}}),
}

# What the toolkit itself writes, by driver and section type ('options' keys come on top).
SIP_PEER_KEYS = frozenset("type host port transport defaultuser fromuser secret fromdomain context insecure "
                          "qualify dtmfmode disallow allow".split())
IAX_PEER_KEYS = frozenset("type host port username secret auth outkey context qualify requirecalltoken "
                          "disallow allow".split())
PJSIP_KEYS = {
    "registration": frozenset("type transport outbound_auth server_uri client_uri outbound_proxy contact_user "
                              "expiration "
                              "retry_interval forbidden_retry_interval fatal_retry_interval max_retries "
                              "auth_rejection_permanent max_random_initial_delay line endpoint".split()),
    "auth": frozenset("type auth_type username password".split()),
    "endpoint": frozenset("type transport context disallow allow outbound_auth aors from_user from_domain "
                          "direct_media dtmf_mode".split()),
    "aor": frozenset("type contact qualify_frequency".split()),
    "identify": frozenset("type endpoint match".split()),
}
# Keys that may appear more than once in one section.
REPEATABLE = frozenset(["allow"])

# --- hostile values ---------------------------------------------------------------------------

INJECTIONS = [
    "\n", "\r", "\r\n", ";", "\\;", "\\", "#", "[", "]", "=>", ">", "=", "\x00", "\x0b", "\x0c", "\x1c",
    "\x1e", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\t", " ", ";--", "--;", "\n[evil]\n",
    "\n#exec /bin/sh\n", "\n#include /etc/passwd\n", "]\n[general]\n", "\nsecret=x\n", "%", "@", ":",
    "/", '"', "'", "(", ")", "?", "~", "\u00a0", "\ufeff", "\u00e9", "\u00b2", "\u0663", "\uff1a",
    "*", "$", "&", ",", "+", "-", "_", ".",
]
WORDS = ["acme", "general", "ASTloop", "10.0.0.1", "0.0.0.0", "fe80::1", "::", "192.0.2.0/24",
         "10.0.0.0/8", "0.0.0.0/0", "::/0", "ulaw", "ULAW", "yes", "N", "Y", "5060", "99999", "trunkinbound",
         "rfc2833", "port,invite", "nat", "secret", "sip.example", "u:p@h", "register =>", "tcp://",
         "sip:", "-reg", "-auth", "-identify", "@@vicireg-secret-1@@"]

piece = st.one_of(st.sampled_from(INJECTIONS), st.sampled_from(WORDS), st.text(max_size=6))
hostile_text = st.one_of(
    st.text(max_size=40),
    st.lists(piece, min_size=1, max_size=8).map("".join),
    st.lists(st.sampled_from(INJECTIONS + WORDS), min_size=1, max_size=4).map("".join),
)
# A few very long values (also swept one by one in test_megabyte_values_in_every_field).
MEGABYTE = [
    "a" * 1000000,
    "x\n[evil]\n#exec /bin/sh\n" * 40000,
    "1234:" + "s" * 999980 + "@sip.acme.example",
]
scalar_junk = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                        st.floats(allow_nan=True, allow_infinity=True), st.just([]), st.just({}),
                        st.lists(st.text(max_size=5), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                    st.text(max_size=3), max_size=1))
hosty = st.one_of(
    st.sampled_from(["10.0.0.1", "192.0.2.1", "2001:db8::1", "[2001:db8::1]", "0.0.0.0", "::", "224.0.0.1",
                     "sip.example", "sip.example.", "a" * 64 + ".example", "1.2.3", "h", "-h.example",
                     "acme:SECRET@192.0.2.1", "192.0.2.1:5060", "0.0.0.0/0", "localhost"]),
    st.builds(lambda a, b: a + b, st.sampled_from(["10.0.0.1", "sip.example", "fe80::1"]), hostile_text),
    st.builds(lambda a, b: a + b, hostile_text, st.sampled_from(["10.0.0.1", "sip.example"])),
)
networky = st.one_of(
    hosty,
    st.builds(lambda a, p: "%s/%s" % (a, p), st.sampled_from(["10.0.0.0", "192.0.2.0", "2001:db8::", "0.0.0.0",
                                                             "::"]), st.integers(0, 130)),
)
option_keys = st.one_of(
    st.sampled_from(sorted(set().union(*fields.OPTION_KEYS.values()))
                    + sorted(set().union(*carriers.RESERVED.values()))),
    st.sampled_from(["NAT", "Md5Secret", " nat", "nat ", "nat\n", "password", "register"]),
    hostile_text,
)
option_values = st.one_of(hostile_text, st.booleans(), st.integers(-10, 10 ** 6), st.none(),
                          st.sampled_from(["yes", "no", "force_rport", ">x", "#x", "a=>b", "a;b", "a[b", " x",
                                           "x ", "a\\", "a" * 255, "a" * 256]),
                          st.lists(st.text(max_size=3), max_size=2))

FIELD_VALUES = {
    "name": st.one_of(hostile_text, st.sampled_from(["general", "GENERAL", "ASTloop", "astloop", "a" * 15,
                                                     "a" * 16, "x-reg", "-", "_"]), scalar_junk),
    "protocol": st.one_of(st.sampled_from(["sip", "pjsip", "iax2", "SIP", "iax", "h323", ""]), hostile_text,
                          scalar_junk),
    "registration": st.one_of(
        hostile_text, scalar_junk,
        st.builds(lambda a: "u:%s@h.example" % a, hostile_text),
        st.builds(lambda a: "u:s3cretX@%s" % a, hostile_text),
        st.builds(lambda a: "%s:s3cretX@h.example" % a, hostile_text),
        st.builds(lambda a: "u:s3cretX@h.example%s" % a, hostile_text),
        st.builds(lambda a: "register => u:s3cretX@h.example:5060/%s" % a, hostile_text)),
    "active": st.one_of(st.booleans(), st.sampled_from(["Y", "N", "yes", "no", "true", "0"]), hostile_text,
                        scalar_junk),
    "host": st.one_of(hosty, scalar_junk),
    "port": st.one_of(st.integers(-10, 70000), st.sampled_from([0, 1, 65535, 65536, 2 ** 63]), scalar_junk,
                      hostile_text),
    "match": st.one_of(st.lists(networky, min_size=1, max_size=3), st.lists(scalar_junk, max_size=2), hostile_text,
                       scalar_junk),
    "context": st.one_of(hostile_text, st.sampled_from(["a" * 79, "a" * 80, "from-x.y+z", "_x"]), scalar_junk),
    "codecs": st.one_of(st.lists(st.one_of(st.sampled_from(sorted(fields.CODECS)), st.sampled_from(
        ["ULAW", "ulaw\n", "ulaw;", "all", "!ulaw"]), hostile_text), max_size=4), hostile_text, scalar_junk),
    "dtmfmode": st.one_of(st.sampled_from(sorted(set().union(*fields.DTMF_MODES.values())) + ["RFC2833", "x"]),
                          hostile_text, scalar_junk),
    "qualify": st.one_of(st.booleans(), st.integers(-5, 70000),
                         st.sampled_from(sorted(fields.YES_NO) + ["N", "Y", " yes ", "60000", "60001",
                                                                         "0", "1"]),
                         hostile_text, scalar_junk),
    "insecure": st.one_of(st.sampled_from(sorted(fields.INSECURE) + ["PORT", "very"]), hostile_text, scalar_junk),
    "options": st.one_of(st.dictionaries(option_keys, option_values, max_size=4), hostile_text, scalar_junk),
    "timeout": st.one_of(st.integers(-5, 10 ** 15), st.floats(allow_nan=True, allow_infinity=True),
                         st.sampled_from([99999999999999, 600, 601, 1]), hostile_text, scalar_junk),
    "description": st.one_of(hostile_text, st.sampled_from(["x" * 255, "x" * 256]), scalar_junk),
    "fromuser": st.one_of(hostile_text, st.sampled_from(["1234", "a" * 64, "a" * 65]), scalar_junk),
    "fromdomain": st.one_of(hosty, scalar_junk),
}
assert set(FIELD_VALUES) == set(FIELDS)


# --- the oracle ---------------------------------------------------------------------------------

# Option keys both allowed and written by the toolkit itself (see known_bug).
OVERLAP = frozenset().union(*(fields.OPTION_KEYS[d] & carriers.RESERVED[d] for d in ALL_DRIVERS))


# Fields whose explicit null passes the preflight but is rendered as 'None' or crashes carrier_plan.
NULL_NOT_DEFAULT = ("context", "codecs", "dtmfmode", "insecure", "qualify")


def _cc(ch):
    return unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029"


GT_BUG = ("secret starting with '>' "
          "(test_render_structure.py::test_a_secret_starting_with_gt_reads_back_whole_in_the_file_written)")


def _get(carrier, key, default):
    """A carrier setting as the toolkit reads it: an explicit null means the default."""
    value = carrier.get(key)
    return default if value is None else value


def known_bug(carrier):
    """Why an ACCEPTED carrier hits a bug that has its own strict-xfail test (else None): none known."""
    return None


def known_crash(carrier):
    """Inputs that crash carrier_problems (a bug with its own strict-xfail test), else None."""
    return None


def label_prefix(carrier):
    name = carrier.get("name")
    if isinstance(name, str) and name and len(name) <= carriers.NAME_MAX and carriers.NAME.fullmatch(name):
        return "carrier %r: " % name
    return None


def drivers_for(chan_sip):
    return ALL_DRIVERS if chan_sip else ("pjsip", "iax2")


def _truthy_expected(value):
    """Only the unambiguous values: None when the oracle does not decide."""
    if value is True or value in ("Y", "y", "yes", "Yes", "true"):
        return True
    if value is False or value in ("N", "n", "no", "No", "false"):
        return False
    return None


def _registers(carrier):
    reg = carrier.get("registration")
    return isinstance(reg, str) and bool(reg.strip())


def _driver(carrier, chan_sip):
    protocol = _get(carrier, "protocol", "sip")
    return "pjsip" if protocol == "sip" and not chan_sip else protocol


def expected_sections(carrier, chan_sip):
    """{file: [section names in order]} for one planned carrier (register lines: no section)."""
    name = carrier["name"]
    driver = _driver(carrier, chan_sip)
    out = {}
    if driver == "pjsip":
        names = [name + "-reg", name + "-auth"] if _registers(carrier) else []
        out["vicireg-pjsip.conf"] = names + [name, name, name + "-identify"]
    else:
        prefix = "vicireg-sip-" if driver == "sip" else "vicireg-iax-"
        out[prefix + "peers.conf"] = [name]
    return out


def _option_text(value):
    return "yes" if value is True else "no" if value is False else str(value)


def check_raw_lines(text, headers):
    """No line is a directive; every '[' line is one of the expected section headers, in order."""
    starts = []
    for line in text.splitlines():
        bare = line.strip()
        assert not bare.startswith("#"), "directive line %r" % line[:80]
        if bare.startswith("["):
            starts.append(bare)
    assert starts == ["[%s]" % h for h in headers], (starts[:5], headers)


def check_render(carrier_list, chan_sip, rendered):
    """The rendered files hold exactly the expected sections and keys for these accepted carriers."""
    files = rendered["files"]
    drivers = drivers_for(chan_sip)
    assert set(files) == {f for f, d in render.FILES.items() if d in drivers}
    planned = []
    for carrier in carrier_list:
        active = _truthy_expected(_get(carrier, "active", True))
        in_plan = any(item["name"] == carrier["name"] for item in rendered["plan"])
        if active is not None:
            assert in_plan == active, (carrier.get("active"), in_plan)
        if in_plan:
            planned.append(carrier)
    planned.sort(key=lambda c: c["name"])
    want = {f: [] for f in files}
    for carrier in planned:
        for f, names in expected_sections(carrier, chan_sip).items():
            want[f] += names
    for f in files:
        real = render.fill_template(rendered["templates"][f], rendered["secrets"])
        assert real == files[f], "fill_template(template, secrets) is not the rendered text of %s" % f
        structure = conffile.structure(real)
        for section, _ in structure:
            assert section is None or not section.startswith(("#", "!")), (f, section[:80])
        got = [s for s, _ in structure if s is not None]
        assert got == want[f], (f, got[:6], want[f])
        check_raw_lines(real, want[f])
        blocks = {c["name"] for c in planned
                  if f in expected_sections(c, chan_sip) or _register_file(c, chan_sip) == f}
        assert set(render.file_digests(real)) == blocks, f
        assert render.file_digests(real) == rendered["digests"][f]
        _check_keys(f, structure, planned, chan_sip)


def _register_file(carrier, chan_sip):
    driver = _driver(carrier, chan_sip)
    if driver == "pjsip" or not _registers(carrier):
        return None
    return "vicireg-sip-register.conf" if driver == "sip" else "vicireg-iax-register.conf"


def _parse(registration, protocol):
    return grammar.parse_registration(registration, "iax2" if protocol == "iax2" else "sip")


def _check_keys(filename, structure, planned, chan_sip):
    driver = render.FILES[filename]
    by_name = {c["name"]: c for c in planned}
    if filename.endswith("-register.conf"):
        registering = [c for c in planned if _register_file(c, chan_sip) == filename]
        if not registering:
            assert structure == []
            return
        assert len(structure) == 1 and structure[0][0] is None
        lines = structure[0][1]
        assert [k for k, _ in lines] == ["register"] * len(registering)
        for carrier, (_, value) in zip(registering, lines):
            # What Asterisk reads (each ';' came from a '\;') means what the inventory said.
            protocol = _get(carrier, "protocol", "sip")
            assert _parse(value.replace(";", "\\;"), protocol) == _parse(carrier["registration"], protocol)
        return
    for section, options in structure:
        values = dict(options)
        if driver == "pjsip":
            kind = values.get("type")
            suffix = {"registration": "-reg", "auth": "-auth", "identify": "-identify"}.get(kind, "")
            assert section.endswith(suffix), (section, kind)
            carrier = by_name[section[:len(section) - len(suffix)]]
            allowed = PJSIP_KEYS[kind]
            with_options = kind == "endpoint"
        else:
            carrier = by_name[section]
            allowed = SIP_PEER_KEYS if driver == "sip" else IAX_PEER_KEYS
            with_options = True
            kind = "peer"
        supplied = carrier.get("options") or {}
        extra = set(supplied) if with_options else set()
        keys = [k for k, _ in options]
        assert set(keys) <= allowed | extra, (section, sorted(set(keys) - allowed - extra))
        for key in set(keys) - REPEATABLE:
            assert keys.count(key) == 1, (section, key, "set %d times" % keys.count(key))
        if with_options:
            for key, value in supplied.items():
                assert values[key] == _option_text(value), (section, key)
        codecs = [c.lower() for c in _get(carrier, "codecs", ["ulaw", "alaw"])]
        if kind == "peer":
            assert values["context"] == _get(carrier, "context", "trunkinbound")
            assert [v for k, v in options if k == "allow"] == codecs
            assert values["qualify"] in ("yes", "no") or 1 <= int(values["qualify"]) <= 60000
        if kind == "endpoint":
            assert values["context"] == _get(carrier, "context", "trunkinbound")
            assert values["allow"] == ",".join(codecs)
        if _registers(carrier):
            reg = _parse(carrier["registration"], _get(carrier, "protocol", "sip"))
            if kind == "peer" and not (driver == "iax2" and reg["secret"].startswith("[")):
                assert values["secret"] == reg["secret"], section
            if kind == "auth":
                assert values["password"] == reg["secret"], section


def render_outcome(carrier_list, chan_sip=True):
    """'refused' (after checking the messages) or 'rendered' (after checking every file).

    Accepted carriers that hit a bug with its own xfail test are reported as 'known-bug' unchecked.
    """
    if any(known_crash(c) for c in carrier_list):
        return "known-crash"
    problems = carriers.carrier_problems(carrier_list, chan_sip)
    if problems:
        prefixes = [label_prefix(c) for c in carrier_list]
        for message in problems:
            assert any(message.startswith(p) for p in prefixes if p) or message.startswith("carrier #"), \
                message[:100]
        # Long values are cut in messages, the registration string's too.
        assert max(len(m) for m in problems) < 1000, "a message of %d characters" % max(map(len, problems))
        with pytest.raises(grammar.RegistrationError):
            carriers.carrier_plan(carrier_list, chan_sip)
        return "refused"
    for carrier in carrier_list:
        if known_bug(carrier):
            return "known-bug"
        check_accepted_fields(carrier)
    plan = carriers.carrier_plan(carrier_list, chan_sip)
    rendered = render.render_files(plan, drivers_for(chan_sip))
    rendered["plan"] = plan
    check_render(carrier_list, chan_sip, rendered)
    return "rendered"


def check_accepted_fields(carrier):
    """vicireg_fields' promise: no accepted field holds a line break, a control character, ';' or '[',
    or starts with '#' (the registration has its own grammar; description is never rendered)."""
    def clean(value, what):
        if not isinstance(value, str):
            return
        if what in ("host", "fromdomain") and value.startswith("[") and value.endswith("]"):
            value = value[1:-1]  # a bracketed IPv6 address
        assert not any(_cc(c) for c in value), (what, value[:60])
        assert ";" not in value and "[" not in value, (what, value[:60])
        assert not value.startswith("#"), (what, value[:60])
    for key in ("host", "context", "dtmfmode", "insecure", "fromuser", "fromdomain", "protocol", "name"):
        clean(carrier.get(key), key)
    for key in ("codecs", "match"):
        if isinstance(carrier.get(key), list):
            for item in carrier[key]:
                clean(item, key)
    if isinstance(carrier.get("options"), dict):
        for key, value in carrier["options"].items():
            clean(key, "option key")
            clean(value, "option %s" % key)
