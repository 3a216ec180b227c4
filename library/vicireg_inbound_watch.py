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
  - Runs on the dialer. Polls C(core show channels concise) every O(interval) seconds until a channel of
    endpoint O(endpoint) on technology O(technology) is up (a name C(PJSIP/ENDPOINT-xxxxxxxx)), or
    O(timeout) seconds pass. An inbound call gets such a channel only when the driver matched it to the
    carrier's endpoint, so a channel seen proves the call arrived through that driver and carrier.
  - Meant to run asynchronously (C(async), C(poll 0)) while a test call is placed, then read with
    C(async_status); it watches from before the call, so a short call is not missed.
  - Does not fail when no channel is seen (C(seen=false)); fails only when Asterisk does not answer.
    Changes nothing on the dialer.
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
    description: Seconds between reads.
    type: float
    default: 0.2
  asterisk:
    description: The asterisk binary.
    type: str
    default: asterisk
author: vicireg project
"""

EXAMPLES = r"""
- name: Watch for the carrier's test call on PJSIP (asynchronously, while the call is placed)
  vicireg_inbound_watch:
    endpoint: acme
    timeout: 30
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
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils import vicireg_status as status


def channels(module, binary):
    """[(channel, context, exten, callerid)] up now."""
    rc, out, err = module.run_command([binary, "-rx", "core show channels concise"])
    text = (out or "") + (err or "")
    if rc != 0 and not text.strip():
        raise status.AsteriskUnavailable("asterisk -rx 'core show channels concise' failed with exit code %d" % rc)
    status.check_cli(text, "core show channels concise", "core")
    found = []
    for line in (out or "").splitlines():
        cols = line.split("!")
        # Channel!Context!Extension!Priority!State!Application!Data!CallerID!...
        if len(cols) > 7 and "/" in cols[0]:
            found.append((cols[0], cols[1], cols[2], cols[7]))
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoint=dict(type="str", required=True),
            technology=dict(type="str", default="PJSIP"),
            timeout=dict(type="float", default=30.0),
            interval=dict(type="float", default=0.2),
            asterisk=dict(type="str", default="asterisk"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    prefix = "%s/%s-" % (p["technology"], p["endpoint"])
    tech = p["technology"] + "/"
    start = time.time()
    others = []
    try:
        before = set(c[0] for c in channels(module, p["asterisk"]))
        while True:
            now = channels(module, p["asterisk"])
            for name, context, exten, callerid in now:
                if name.startswith(prefix):
                    module.exit_json(changed=False, seen=True, seconds=round(time.time() - start, 2), others=others,
                                     channel={"name": name, "context": context, "exten": exten,
                                              "callerid": callerid})
                if name.startswith(tech) and name not in before and name not in others:
                    others.append(name)
            if time.time() - start >= p["timeout"]:
                break
            time.sleep(max(0.05, min(p["interval"], 1.0)))
    except status.AsteriskUnavailable as exc:
        module.fail_json(msg=str(exc), seen=False, channel=None, others=others)
    module.exit_json(changed=False, seen=False, channel=None, seconds=round(time.time() - start, 2), others=others)


if __name__ == "__main__":
    main()
