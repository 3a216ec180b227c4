#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vicireg_inbound_watch
short_description: Wait until a carrier's call shows up on a channel of one endpoint (proof of the inbound path)
description:
  - Runs on the dialer. Waits until a channel of endpoint O(endpoint) on technology O(technology) comes
    up (a name C(PJSIP/ENDPOINT-xxxxxxxx)), or O(timeout) seconds pass. An inbound call gets such a
    channel only when the driver matched it to the carrier's endpoint, so a channel seen proves the call
    arrived through that driver and carrier.
  - With O(ami_username), it listens to the Asterisk Manager Interface's C(Newchannel) events, which
    also catch a channel that lives a few milliseconds (a carrier that forks a call to several contacts
    of the dialer cancels the other branches as soon as one answers). Without, it polls
    C(core show channels concise) every O(interval) seconds, which can miss such a channel.
  - Meant to run asynchronously (C(async), C(poll 0)) while a test call is placed, then read with
    C(async_status); it watches from before the call, so a short call is not missed.
  - Does not fail when no channel is seen (C(seen=false)); fails only when Asterisk (or its AMI) does
    not answer. Changes nothing on the dialer.
options:
  endpoint:
    description: The endpoint (carrier) name, as in C(PJSIP/NAME-0000002a).
    type: str
    required: true
  technology:
    description: Channel technology of the endpoint.
    type: str
    default: PJSIP
  timeout:
    description: Seconds to watch.
    type: float
    default: 30
  interval:
    description: Seconds between reads when polling the CLI.
    type: float
    default: 0.2
  asterisk:
    description: The asterisk binary.
    type: str
    default: asterisk
  ami_host:
    description: Address of the dialer's AMI (manager.conf C(bindaddr)).
    type: str
    default: 127.0.0.1
  ami_port:
    description: Port of the dialer's AMI.
    type: int
    default: 5038
  ami_username:
    description: AMI user with C(read=call) (e.g. VICIdial's C(cron)); without it the CLI is polled.
    type: str
  ami_secret:
    description: The AMI user's secret.
    type: str
author: vicireg project
"""

EXAMPLES = r"""
- name: Watch for the carrier's test call on PJSIP (asynchronously, while the call is placed)
  vicireg_inbound_watch:
    endpoint: acme
    timeout: 30
    ami_username: cron
    ami_secret: "{{ vault_ami_secret }}"
  async: 45
  poll: 0
  register: watch
"""

RETURN = r"""
seen:
  description: Whether a channel of the endpoint came up.
  returned: always
  type: bool
channel:
  description: The first such channel (null when none), with its C(context), C(exten) and C(callerid).
  returned: always
  type: dict
seconds:
  description: Seconds from the start of the watch to the channel (or to the timeout).
  returned: always
  type: float
others:
  description: Other channels of the same technology that came up meanwhile (e.g. another endpoint took the call).
  returned: always
  type: list
  elements: str
method:
  description: C(ami) or C(cli).
  returned: always
  type: str
"""

import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils import vicireg_status as status


class WatchError(Exception):
    """Asterisk or its AMI did not answer as expected (the message says how)."""


def cli_channels(module, binary):
    """[(channel, context, exten, callerid)] up now."""
    rc, out, err = module.run_command([binary, "-rx", "core show channels concise"])
    text = (out or "") + (err or "")
    if rc != 0 and not text.strip():
        raise WatchError("asterisk -rx 'core show channels concise' failed with exit code %d" % rc)
    try:
        status.check_cli(text, "core show channels concise", "core")
    except status.AsteriskUnavailable as exc:
        raise WatchError(str(exc))
    found = []
    for line in (out or "").splitlines():
        cols = line.split("!")
        # Channel!Context!Extension!Priority!State!Application!Data!CallerID!...
        if len(cols) > 7 and "/" in cols[0]:
            found.append((cols[0], cols[1], cols[2], cols[7]))
    return found


def watch_cli(module, prefix, tech, deadline, interval):
    before = set(c[0] for c in cli_channels(module, module.params["asterisk"]))
    others = []
    while True:
        for name, context, exten, callerid in cli_channels(module, module.params["asterisk"]):
            if name.startswith(prefix):
                return {"name": name, "context": context, "exten": exten, "callerid": callerid}, others
            if name.startswith(tech) and name not in before and name not in others:
                others.append(name)
        if time.time() >= deadline:
            return None, others
        time.sleep(max(0.05, min(interval, 1.0)))


class Ami:
    """Just enough of the Asterisk Manager Interface: login, then read events."""

    def __init__(self, host, port, timeout=5.0):
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except (OSError, socket.error) as exc:
            raise WatchError("the AMI at %s:%d does not answer (%s)" % (host, port, exc))
        self.buf = b""
        self._line()  # banner: Asterisk Call Manager/x.y

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise WatchError("the AMI closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("utf-8", "replace")

    def message(self):
        """The next message as a dict; raises socket.timeout when none arrives in time."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        out = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep:
                out[key] = value
        return out

    def login(self, username, secret):
        self.sock.sendall(("Action: Login\r\nActionID: vicireg-watch\r\nUsername: %s\r\nSecret: %s\r\n"
                           "Events: call\r\n\r\n" % (username, secret)).encode("utf-8"))
        while True:
            msg = self.message()
            if msg.get("ActionID") == "vicireg-watch" or "Response" in msg:
                if msg.get("Response") != "Success":
                    # The message Asterisk gives ('Authentication failed'), never the secret.
                    raise WatchError("AMI login as %s refused: %s" % (username, msg.get("Message", "?")))
                return

    def close(self):
        try:
            self.sock.sendall(b"Action: Logoff\r\n\r\n")
        except (OSError, socket.error):
            pass
        self.sock.close()


def watch_ami(module, prefix, tech, deadline):
    p = module.params
    ami = Ami(p["ami_host"], p["ami_port"])
    others = []
    try:
        ami.login(p["ami_username"], p["ami_secret"] or "")
        while True:
            left = deadline - time.time()
            if left <= 0:
                return None, others
            ami.sock.settimeout(min(left, 1.0))
            try:
                msg = ami.message()
            except socket.timeout:
                continue
            name = msg.get("Channel", "")
            if msg.get("Event") != "Newchannel":
                continue
            if name.startswith(prefix):
                return {"name": name, "context": msg.get("Context"), "exten": msg.get("Exten"),
                        "callerid": msg.get("CallerIDNum")}, others
            if name.startswith(tech) and name not in others:
                others.append(name)
    finally:
        ami.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoint=dict(type="str", required=True),
            technology=dict(type="str", default="PJSIP"),
            timeout=dict(type="float", default=30.0),
            interval=dict(type="float", default=0.2),
            asterisk=dict(type="str", default="asterisk"),
            ami_host=dict(type="str", default="127.0.0.1"),
            ami_port=dict(type="int", default=5038),
            ami_username=dict(type="str"),
            ami_secret=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    prefix = "%s/%s-" % (p["technology"], p["endpoint"])
    tech = p["technology"] + "/"
    start = time.time()
    method = "ami" if p["ami_username"] else "cli"
    try:
        if method == "ami":
            channel, others = watch_ami(module, prefix, tech, start + p["timeout"])
        else:
            channel, others = watch_cli(module, prefix, tech, start + p["timeout"], p["interval"])
    except (WatchError, OSError, socket.error) as exc:
        module.fail_json(msg=str(exc), seen=False, channel=None, others=[], method=method)
    module.exit_json(changed=False, seen=channel is not None, channel=channel, others=others, method=method,
                     seconds=round(time.time() - start, 2))


if __name__ == "__main__":
    main()
