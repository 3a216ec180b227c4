"""A small stdlib DNS client: one query packet built by hand (struct), over UDP (TCP when the answer
is truncated), and the answer decoded (A, AAAA, SRV, NAPTR, CNAME, NS, PTR, TXT, SOA)."""
from __future__ import annotations

import ipaddress
import secrets
import socket
import struct
import time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
         "NAPTR": 35, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class DNSQueryError(Exception):
    """No (usable) answer from the server."""


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if not label:
            if name.strip(".") == "":
                break
            raise DNSQueryError(f"empty label in {name!r}")
        raw = label.encode("ascii")
        if len(raw) > 63:
            raise DNSQueryError(f"label longer than 63 bytes in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(name: str, qtype: str, qid: int, rd: bool = True) -> bytes:
    code = TYPES[qtype.upper()] if not str(qtype).isdigit() else int(qtype)
    header = struct.pack("!HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", code, 1)


def _read_name(msg: bytes, off: int) -> tuple[str, int]:
    labels, jumped, end, hops = [], False, off, 0
    while True:
        if off >= len(msg):
            raise DNSQueryError("truncated name in answer")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if hops > 50:
                raise DNSQueryError("compression loop in answer")
            ptr = struct.unpack("!H", msg[off:off + 2])[0] & 0x3FFF
            if not jumped:
                end = off + 2
            off, jumped, hops = ptr, True, hops + 1
            continue
        if n == 0:
            if not jumped:
                end = off + 1
            return (".".join(labels) + ".") if labels else ".", end
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def _char_string(rd: bytes, off: int) -> tuple[str, int]:
    n = rd[off]
    return rd[off + 1:off + 1 + n].decode("ascii", "replace"), off + 1 + n


def _rdata(msg: bytes, rtype: int, off: int, rdlen: int) -> str:
    rd = msg[off:off + rdlen]
    if rtype == 1 and rdlen == 4:
        return str(ipaddress.IPv4Address(rd))
    if rtype == 28 and rdlen == 16:
        return str(ipaddress.IPv6Address(rd))
    if rtype in (2, 5, 12):
        return _read_name(msg, off)[0]
    if rtype == 33:
        prio, weight, port = struct.unpack("!HHH", rd[:6])
        return f"{prio} {weight} {port} {_read_name(msg, off + 6)[0]}"
    if rtype == 35:
        order, pref = struct.unpack("!HH", rd[:4])
        pos, texts = 4, []
        for _ in range(3):
            text, pos = _char_string(rd, pos)
            texts.append(text)
        repl = _read_name(msg, off + pos)[0]
        return f'{order} {pref} "{texts[0]}" "{texts[1]}" "{texts[2]}" {repl}'
    if rtype == 15:
        return f"{struct.unpack('!H', rd[:2])[0]} {_read_name(msg, off + 2)[0]}"
    if rtype == 16:
        pos, texts = 0, []
        while pos < rdlen:
            text, pos = _char_string(rd, pos)
            texts.append(f'"{text}"')
        return " ".join(texts)
    if rtype == 6:
        mname, pos = _read_name(msg, off)
        rname, pos = _read_name(msg, pos)
        return f"{mname} {rname} " + " ".join(str(v) for v in struct.unpack("!IIIII", msg[pos:pos + 20]))
    return rd.hex()


def parse_response(msg: bytes, qid: int | None = None) -> dict:
    if len(msg) < 12:
        raise DNSQueryError("short answer")
    rid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    if qid is not None and rid != qid:
        raise DNSQueryError("answer id does not match the query")
    off = 12
    for _ in range(qd):
        _, off = _read_name(msg, off)
        off += 4
    sections: dict[str, list[dict]] = {"answers": [], "authority": [], "additional": []}
    for key, count in (("answers", an), ("authority", ns), ("additional", ar)):
        for _ in range(count):
            name, off = _read_name(msg, off)
            rtype, _cls, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10
            sections[key].append({"name": name, "type": TYPE_NAMES.get(rtype, str(rtype)), "ttl": ttl,
                                  "value": _rdata(msg, rtype, off, rdlen)})
            off += rdlen
    return {"rcode": RCODES.get(flags & 0xF, str(flags & 0xF)), "aa": bool(flags & 0x0400),
            "tc": bool(flags & 0x0200), **sections}


def query(name: str, qtype: str = "A", server: str = "127.0.0.9", port: int = 53, timeout: float = 1.0,
          tcp: bool = False) -> dict:
    """Ask server one question; returns {rcode, answers: [{name, type, ttl, value}], authority, ...,
    seconds}. Raises DNSQueryError when nothing (usable) comes back within timeout."""
    qid = secrets.randbelow(0x10000)
    packet = build_query(name, qtype, qid)
    t = time.monotonic()
    try:
        if tcp:
            with socket.create_connection((server, port), timeout=timeout) as s:
                s.sendall(struct.pack("!H", len(packet)) + packet)
                data = b""
                while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                    chunk = s.recv(65535)
                    if not chunk:
                        raise DNSQueryError("TCP connection closed before the whole answer")
                    data += chunk
                res = parse_response(data[2:2 + struct.unpack("!H", data[:2])[0]], qid)
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                s.sendto(packet, (server, port))
                while True:
                    data, _ = s.recvfrom(65535)
                    try:
                        res = parse_response(data, qid)
                        break
                    except DNSQueryError:
                        if time.monotonic() - t > timeout:
                            raise
            if res["tc"]:
                return query(name, qtype, server, port, timeout, tcp=True)
    except OSError as exc:
        raise DNSQueryError(f"no answer from {server}:{port} ({'tcp' if tcp else 'udp'}): {exc}") from None
    res["seconds"] = round(time.monotonic() - t, 4)
    res["question"] = {"name": name, "type": qtype.upper()}
    return res
