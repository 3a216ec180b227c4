"""The grammar against real Asterisk 16: what it accepts, Asterisk reads the same way; what it
rejects, Asterisk refuses or misreads.

A second Asterisk 16 runs in the lab's IAX2-carrier root with a sip.conf / iax.conf holding the whole
corpus. Asterisk's own parse is read back over AMI (SIPshowregistry, IAXregistry); the fields AMI
does not show (extension, auth user, secret) are read off the REGISTERs it sends: a listener on
127.0.0.19 challenges each one and checks the digest against the secret the grammar parsed.
The outcome per string is written to reports/grammar-vs-asterisk.json.
"""
import hashlib
import json
import os
import re
import select
import socket
import threading
import time

import pytest

import labtools
from vicireg_grammar import RegistrationError, parse_registration

SINK = "127.0.0.19"  # nothing of the lab listens here; the corpus hosts resolve to it
REALM, NONCE = "vicireg-diff", "5f2b0a1c"

# (string, protocol, expected Asterisk outcome when the grammar rejects it)
#   None: the grammar accepts it; Asterisk must agree field by field.
#   "absent": Asterisk refuses it (or misreads the host): no registration for the intended host.
#   {field: value}: Asterisk silently accepts it and reads these fields (the misread).
SIP = [
    ("name@h1.lab.test", None),
    ("name:pass@h2.lab.test", None),
    ("name@d3.lab.test:pass:authuser@h3.lab.test", None),
    ("name@d4.lab.test:pass:authuser@h4.lab.test/extension", None),
    ("tcp://name@d5.lab.test:pass:authuser@h5.lab.test/extension", None),
    ("tls://name@d6.lab.test:pass:authuser@h6.lab.test/extension~111", None),
    ("peer?tcp://name@d7.lab.test:pass:authuser@h7.lab.test:1234/extension~111", None),
    ("peer?name@d8.lab.test:pass:authuser@h8.lab.test:1234/extension~111", None),
    ("name@d9.lab.test:4321:pass:authuser@h9.lab.test", None),
    ("name@d10.lab.test:4321::@h10.lab.test", None),
    ("2345:password@h11.lab.test/1234", None),
    ("3456@d12.lab.test:5082::@h12.lab.test", None),
    ("1234:s3cret@h13.lab.test:5060/1234", None),
    ("register => 1234:s3cret@h14.lab.test:5080/1234", None),
    (r"user:pa\;ss@h15.lab.test", None),
    ('"user":"pa:ss"@h16.lab.test', None),
    ("user:p@ss@h17.lab.test", None),
    ("user::authonly@h18.lab.test", None),
    ("USER-1.x:pw@h19.lab.test:5080", None),
    ("+15551234567:pw@h20.lab.test/15551234567", None),
    ("user:pw@h21.lab.test~3600", None),
    ("TCP://user:pw@h22.lab.test", None),
    ("user:pw@127.0.0.19:5099", None),
    ("user@d24.lab.test:pw@h24.lab.test", None),
    ("user:pw@h25.lab.test:05060", None),
    ("peer?user:pa?ss@h27.lab.test", None),
    ("tcp://user:pa/ss@h28.lab.test", None),
    ("user#1:pw@h29.lab.test", None),
    ("user:pw~x@h30.lab.test", None),
    ("user:pw@sip_proxy31", None),
    ("a:b@h32.lab.test/s~60", None),
    ("user:pw@[::1]:5098", None),
    # secrets holding characters Asterisk's splitter treats specially, where it reads them as written
    ("user:pw\\x@h64.lab.test", None),
    ("user:pa(ss@h70.lab.test", None),
    ("user:[pass]@h71.lab.test", None),
    ('user:pa"ss@h72.lab.test', None),
    ("udp://user/name:pw@h73.lab.test", None),
    ('user:"[pa:ss]"@h74.lab.test', None),
    ("user:(pa)ss:auth@h75.lab.test", None),
    ('user:""pass""@h80.lab.test', None),
    # rejected: refused or misread by Asterisk
    ("user:pw@h40.lab.test:99999", {"port": 5060}),
    ("user:pw@h41.lab.test:0", {"port": 5060}),
    ("user:pw@h42.lab.test:abc", {"port": 5060}),
    ("user:pw@h43.lab.test:", {"port": 5060}),
    ("user:pw@h44.lab.test~abc", {"refresh": 0}),
    ("user:pw@h45.lab.test~", {"refresh": 0}),
    ("sip:user:pw@h46.lab.test", {"username": "sip"}),
    ("sips:user:pw@h47.lab.test", {"username": "sips"}),
    ("register => register => user:pw@h48.lab.test", {"username": "register => user"}),
    ("user:pw@h49.lab.test:5060:5070", {"port": 5060}),
    ("ws://user:pw@h50.lab.test", {"username": "user", "port": 5060}),
    ("sctp://user:pw@h51.lab.test", {"username": "user", "port": 5060}),
    ("us er:pw@h52.lab.test", {"username": "us er"}),
    ("user:pw;x@h53.lab.test", "absent"),
    ("user:pw@h54.lab.test:5060;transport=tcp", {"port": 5060, "username": "user"}),
    ("user:pw@@h55.lab.test", {"username": "user", "secret": "pw@"}),
    (":pw@h56.lab.test", {"username": ""}),
    ("user:pw@h57.lab.test/", {"username": "user"}),
    ("?user:pw@h58.lab.test", {"username": "user"}),
    ("user@:pw@h59.lab.test", {"username": "user", "domain": "h59.lab.test"}),  # the domain is dropped
    ("user:pw@h60.lab.test" + "x" * 240, "absent"),
    ("user:pw@h61.lab.test/100/200", {"username": "user", "extension": "100/200"}),
    ("user:pa(ss:auth@h62.lab.test", {"username": "user", "secret": "pa(ss:auth"}),
    ("user/x:pw@h63.lab.test", "absent"),
    ("user:pw:auth:x@h65.lab.test", {"username": "user", "secret": "auth", "authuser": "x"}),
    ('user:pa"ss:auth@h76.lab.test', {"username": "user", "secret": 'pa"ss:auth'}),
    ("user:pw\\:auth@h77.lab.test", {"username": "user", "secret": "pw\\:auth"}),
    ('user:"pass"@h78.lab.test', {"username": "user", "secret": "pass"}),
    ("user:[pa:ss]@h79.lab.test", {"username": "user", "secret": "[pa:ss]"}),
    ('user:a@"b:c"@h81.lab.test', {"username": "user", "secret": 'a@"b:c"'}),
]
IAX2 = [
    ("iuser1:pw@i1.lab.test", None),
    ("iuser2:pw@i2.lab.test:4570", None),
    ("iuser3@i3.lab.test", None),
    ("iuser4:[rsakey]@i4.lab.test", None),
    ("iuser5:pw@127.0.0.19:4571", None),
    ("iuser6:p@ss@i6.lab.test", {"username": "iuser6", "host": "(null)"}),  # host "ss": resolves nowhere
    ("iuser7:pw:x@i7.lab.test", {"username": "iuser7"}),
    ("iuser8:pw@i8.lab.test:", "absent"),
    ("iuser9:pw@i9.lab.test/100", {"username": "iuser9", "host": "(null)"}),
    ("tcp://iuser10:pw@i10.lab.test", {"username": "tcp"}),
    ("iuser11:pw@[::1]", "absent"),
    ("iuser12:pw@i12.lab.test~60", {"username": "iuser12", "host": "(null)"}),
    ('iuser13:pa"ss@i13.lab.test', None),
    ("iuser14:pa(ss]@i14.lab.test", None),
    ("iuser15:pw\\x?/~@i15.lab.test", None),
    ('iuser16:"pw"@i16.lab.test', {"username": "iuser16"}),  # chan_iax2 keeps the quotes in the secret
]
CORPUS = [(s, "sip", e) for s, e in SIP] + [(s, "iax2", e) for s, e in IAX2]


def _key(value):
    """The host a corpus string means (h12.lab.test, i3.lab.test, 127.0.0.19:5099, [::1]...)."""
    m = re.search(r"@((?:[hi]\d+\.lab\.test)|sip_proxy31|\[::1\]|127\.0\.0\.19)(?::(\d+))?", value)
    return m.group(1) + (":" + m.group(2) if m.group(1) in ("127.0.0.19", "[::1]") and m.group(2) else "")


class Listener:
    """UDP on 127.0.0.19: challenge each REGISTER once, then record what its digest proves."""

    def __init__(self, ports):
        self.socks = []
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((SINK, port))
            self.socks.append(s)
        self.seen = {}
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            ready, _, _ = select.select(self.socks, [], [], 0.2)
            for s in ready:
                data, addr = s.recvfrom(65535)
                self._handle(s, data.decode("utf-8", "replace"), addr)

    def _handle(self, sock, text, addr):
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        if not head[0].startswith("REGISTER "):
            return
        uri = head[0].split()[1]
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
        host = re.sub(r"^sips?:", "", uri).split(";")[0]
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        entry = self.seen.setdefault(host, {"port": sock.getsockname()[1]})
        contact = re.search(r"<sip:([^@>]*)@", headers.get("contact", ""))
        entry["extension"] = contact.group(1) if contact else None
        auth = headers.get("authorization")
        code = "401 Unauthorized"
        extra = 'WWW-Authenticate: Digest realm="%s", nonce="%s", algorithm=MD5\r\n' % (REALM, NONCE)
        if auth:
            fields = dict(re.findall(r'(\w+)="?([^",]*)"?', auth))
            entry.update(auth_username=fields.get("username"), auth_uri=fields.get("uri"),
                         response=fields.get("response"))
            code, extra = "403 Forbidden", ""
        reply = "SIP/2.0 %s\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=vicireg\r\nCall-ID: %s\r\nCSeq: %s\r\n%s" \
                "Content-Length: 0\r\n\r\n" % (code, headers.get("via", ""), headers.get("from", ""),
                                               headers.get("to", ""), headers.get("call-id", ""),
                                               headers.get("cseq", ""), extra)
        sock.sendto(reply.encode(), addr)

    def close(self):
        self.stop = True
        self.thread.join(2)
        for s in self.socks:
            s.close()


def _wire_key(value, protocol, expected):
    """The Request-URI host of the REGISTER a string makes, when the test needs to see it."""
    if protocol != "sip" or value.lower().startswith(("tcp", "tls")) or "[::1]" in value:
        return None
    if expected is None:
        parsed = parse_registration(value, protocol)
        return parsed["domain"] or parsed["host"].split(":")[0]
    if isinstance(expected, dict) and ({"secret", "extension"} & set(expected)):
        return _key(value).split(":")[0]
    return None


def _digest_ok(entry, user, secret):
    ha1 = hashlib.md5(("%s:%s:%s" % (user, REALM, secret)).encode()).hexdigest()
    ha2 = hashlib.md5(("REGISTER:%s" % entry["auth_uri"]).encode()).hexdigest()
    return hashlib.md5(("%s:%s:%s" % (ha1, NONCE, ha2)).encode()).hexdigest() == entry["response"]


@pytest.fixture(scope="module")
def asterisk_reads():
    labtools.facts()  # the lab (its cached Asterisk 16 root) must be up
    oracle = labtools.OracleRoot("a16", "diff").__enter__()
    root, address = oracle.root, labtools.ORACLE_ADDRESS
    names = sorted({_key(s).split(":")[0] for s, _, _ in CORPUS if ".lab.test" in s or "sip_proxy" in s}
                   | {"d%d.lab.test" % i for i in range(1, 70)})
    with open(os.path.join(root, "etc/hosts"), "w") as handle:
        handle.write("127.0.0.1 localhost\n" + "".join("%s %s\n" % (SINK, n) for n in names))
    sip_lines = "".join("register => %s\n" % s if not s.lower().startswith("register") else s + "\n"
                        for s, p, _ in CORPUS if p == "sip")
    iax_lines = "".join("register => %s\n" % s for s, p, _ in CORPUS if p == "iax2")
    files = {
        "modules.conf": "[modules]\nautoload=no\n" + "".join(
            "load => %s.so\n" % m for m in ("res_crypto", "res_timing_timerfd", "res_pjproject",
                                            "res_rtp_asterisk", "chan_sip", "chan_iax2", "pbx_config",
                                            "codec_ulaw")),
        "logger.conf": "[general]\n[logfiles]\nmessages => notice,warning,error\n",
        "manager.conf": "[general]\nenabled=yes\nbindaddr=%s\nport=5039\n[diff]\nsecret=diff\nread=all\n"
                        "write=all\n" % address,
        "sip.conf": "[general]\nbindaddr=%s\nbindport=5090\nregistertimeout=3\nregisterattempts=1\n"
                    "tcpenable=no\ntlsenable=no\n%s\n[peer]\ntype=peer\nhost=%s\n" % (address, sip_lines, SINK),
        "iax.conf": "[general]\nbindport=4590\nbindaddr=%s\n%s" % (address, iax_lines),
        "extensions.conf": "[default]\n",
        "rtp.conf": "[general]\nrtpstart=21000\nrtpend=21098\n",
    }
    ports = sorted({5060, 5080, 1234, 5099} | {int(m) for m in re.findall(r"@h\d+\.lab\.test:(\d+)", sip_lines)
                                                 if 1 <= int(m) <= 65535 and int(m) != 0})
    listener = Listener(ports)
    instance = labtools.RootAsterisk(root, "diff", files).start()
    try:
        labtools.wait_port(address, 5039)
        needed = {_wire_key(v, p, e) for v, p, e in CORPUS} - {None}
        deadline = time.time() + 45
        while time.time() < deadline and not all("response" in listener.seen.get(k, {}) for k in needed):
            time.sleep(0.25)
        ami = labtools.AMI(address, 5039, "diff", "diff")
        sip_rows = [m for m in ami.action("SIPshowregistry", complete="RegistrationsComplete")
                    if m.get("Event") == "RegistryEntry"]
        iax_rows = [m for m in ami.action("IAXregistry", complete="RegistrationsComplete")
                    if m.get("Event") == "RegistryEntry"]
        ami.close()
        log = instance.log()
    finally:
        instance.stop()
        listener.close()
        oracle.__exit__()
    outcomes = []
    result = {"sip_rows": sip_rows, "iax_rows": iax_rows, "wire": dict(listener.seen), "log": log,
              "outcomes": outcomes}
    yield result
    os.makedirs(os.path.join(labtools.ROOT, "reports"), exist_ok=True)
    with open(os.path.join(labtools.ROOT, "reports", "grammar-vs-asterisk.json"), "w") as handle:
        json.dump(outcomes, handle, indent=1)


def _sip_row(rows, key):
    host, _, port = key.partition(":") if not key.startswith("[") else (key.split("]")[0] + "]", None,
                                                                         key.split("]:")[-1])
    found = [r for r in rows if r.get("Host") == host and (not port or r.get("Port") == port)]
    return found


def _asterisk_fields(row, wire):
    out = {"host": row.get("Host"), "port": int(row.get("Port") or 0), "username": row.get("Username"),
           "domain": row.get("Domain") or None, "domain_port": int(row.get("DomainPort") or 0),
           "refresh": int(row.get("Refresh") or 0)}
    if wire:
        out["extension"] = wire.get("extension")
    return out


@pytest.mark.parametrize("value,protocol,expected", CORPUS, ids=["%s-%d" % (c[1], i) for i, c in enumerate(CORPUS)])
def test_grammar_agrees_with_asterisk(asterisk_reads, value, protocol, expected):
    key = _key(value)
    try:
        ours = parse_registration(value, protocol)
        accepted = True
    except RegistrationError as exc:
        ours, accepted = str(exc), False
    assert accepted == (expected is None), "grammar verdict differs from the corpus for %r: %s" % (value, ours)
    if protocol == "sip":
        rows = _sip_row(asterisk_reads["sip_rows"], key)
        wire_key = _wire_key(value, protocol, expected)
        wire = asterisk_reads["wire"].get(wire_key) if wire_key else None
    else:
        # AMI shows the IAX2 host as the address it resolved to: match on the (unique) user instead.
        user = value.split(":")[0].split("@")[0]
        rows = [r for r in asterisk_reads["iax_rows"] if r.get("Username") == user[:10]]
        wire = None
    record = {"string": value, "protocol": protocol,
              "grammar": "accepts" if accepted else "rejects", "asterisk_rows": len(rows)}
    asterisk_reads["outcomes"].append(record)
    if expected == "absent":
        record["asterisk"] = "refuses (no registration for the intended host)"
        assert rows == [], "Asterisk did read %r: %s" % (value, rows)
        return
    assert len(rows) == 1, "Asterisk has %d registrations for %r" % (len(rows), value)
    row = rows[0]
    if protocol == "iax2":
        host, _, port = row["Host"].rpartition(":")
        got = {"username": row.get("Username"), "host": host or row["Host"], "port": int(port) if port.isdigit() else None}
        record["asterisk"] = got
        if accepted:
            assert got["username"] == ours["username"][:10]
            assert got["port"] == ours["port"]
        else:
            for k, v in expected.items():
                assert got[k] == v, (k, got)
        return
    got = _asterisk_fields(row, wire)
    record["asterisk"] = got
    if accepted:
        assert got["host"] == ours["host"]
        assert got["port"] == ours["port"]
        assert got["username"] == ours["username"]
        # AMI shows the host as the domain, and 5060 as the domain port, when none is given.
        assert got["domain"] == (ours["domain"] or ours["host"])
        assert got["domain_port"] == (ours["domain_port"] or 5060)
        assert got["refresh"] == (ours["expiry"] or 120)
        if wire and ours["transport"] == "udp" and "response" in wire:
            assert wire["extension"] == ours["extension"]
            assert _digest_ok(wire, ours["authuser"] or ours["username"], ours["secret"] or ""), \
                "Asterisk's digest does not match the parsed auth user and secret for %r" % value
            record["wire"] = "extension, auth user and secret confirmed by digest"
    else:
        record["misread"] = expected
        for k, v in expected.items():
            if k == "secret":
                assert wire and "response" in wire, "no REGISTER seen for %r" % value
                assert _digest_ok(wire, expected.get("authuser") or got["username"], v)
            elif k == "authuser":
                assert wire["auth_username"] == v
            else:
                assert got[k] == v, (k, got)
