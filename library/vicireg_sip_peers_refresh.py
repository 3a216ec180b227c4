#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: the vicireg project. GNU General Public License v3.0+
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vicireg_sip_peers_refresh
short_description: Make chan_sip forget some of the toolkit's peers for one reload
description:
  - chan_sip reconfigures an existing peer in place and keeps its last qualify result, so a peer
    moved to a new, dead address still shows C(OK) for a long while. A peer that was gone for one
    reload comes back as a new object whose qualify state is measured anew.
  - Rewrites C(vicireg-sip-peers.conf) without the named peers' blocks, runs C(sip reload), waits
    until Asterisk no longer knows them (at most I(timeout) seconds), then puts the file back as it
    was. It does not reload again; the step that proves the carriers does.
  - Every write is atomic and exclusive (no symlink followed), with the file's own owner and mode.
options:
  names:
    description: Carrier (peer) names to take out for one reload.
    type: list
    elements: str
    required: true
  conf_dir:
    description: Asterisk's configuration directory.
    type: path
    default: /etc/asterisk
  asterisk:
    description: The asterisk binary.
    type: str
    default: asterisk
  timeout:
    description: Seconds to wait for chan_sip to drop the peers.
    type: float
    default: 10
author: vicireg project
"""

EXAMPLES = r"""
- name: Take changed IP-auth peers out for one reload
  vicireg_sip_peers_refresh:
    names: [carrier1]
"""

RETURN = r"""
gone:
  description: Whether chan_sip dropped every named peer within the timeout.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils import vicireg_write as write


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str", required=True),
            conf_dir=dict(type="path", default="/etc/asterisk"),
            asterisk=dict(type="str", default="asterisk"),
            timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if module.check_mode or not p["names"]:
        module.exit_json(changed=False, gone=not p["names"])

    def rx(command):
        rc, out, err = module.run_command([p["asterisk"], "-rx", command])
        return (out or "") + (err or "")

    gone = write.refresh_sip_peers(rx, p["conf_dir"], p["names"], p["timeout"])
    module.exit_json(changed=True, gone=gone)


if __name__ == "__main__":
    main()
