"""labkit - the code of the vicireg loopback lab (entry point: lab/labctl.py).

Modules, one concern each:
    config     paths, constants, lab.toml, hosts and accounts, templates
    procs      processes, mounts, ports (stdlib /proc walking)
    machine    the machine itself: root check, host packages, lab SSH key, the lab lock
    roots      the cached Debian roots (debootstrap + Asterisk)
    hosts      dialers and the IAX2 carrier host: overlay instances of a root
    carriers   the SIP carrier (Kamailio) and the IAX2 carrier's own files
    dnswire    a stdlib DNS client (query packets built by hand)
    dns        the lab DNS server (unbound) and its records
    registrar  what Kamailio saw: REGISTER log lines, contacts (kamcmd ul.dump)
    state      state.json, the Ansible inventory, lab-facts.json
    lifecycle  up, down, status
    cli        the command line
Standard library only (Python 3.11): it runs as root before any venv exists.
"""
