"""The pure parts of the chan_sip un-REGISTER client: digest answers and the bindings a registrar lists.

The protocol itself is proven against the lab's Kamailio (tests/lab/test_contacts.py).
"""
import vicireg_unregister as unregister


def test_digest_matches_rfc_2617s_worked_example():
    challenge = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                 'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    got = unregister._digest(challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", cnonce="0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in got
    assert 'qop=auth, nc=00000001, cnonce="0a4f113b"' in got and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in got


def test_digest_without_qop_is_rfc_2069():
    got = unregister._digest('Digest realm="r", nonce="n"', "REGISTER", "sip:h", "u", "p")
    # md5(md5(u:r:p):n:md5(REGISTER:sip:h))
    import hashlib
    ha1 = hashlib.md5(b"u:r:p").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:h").hexdigest()
    assert 'response="%s"' % hashlib.md5(("%s:n:%s" % (ha1, ha2)).encode()).hexdigest() in got
    assert "qop" not in got


def test_bindings_of_a_200_answer():
    head = ("SIP/2.0 200 OK\r\nContact: <sip:s@127.0.0.21:5060>;expires=100, "
            "<sip:s@127.0.0.22:5070;line=abc>;expires=30\r\nm: <sip:7001@[2001:db8::1]>;expires=5\r\n"
            "To: <sip:u@h>;tag=x")
    assert [(b["user"], b["host"], b["port"]) for b in unregister.bindings(head)] == [
        ("s", "127.0.0.21", 5060), ("s", "127.0.0.22", 5070), ("7001", "2001:db8::1", 5060)]
