"""vicireg_write.pending (what the one-call no-op asks) and vicireg_write.apply (what the writer writes) never
disagree: on any mix of changed content, owner/mode, missing files and missing include lines."""
import grp
import importlib
import os
import pwd
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

import ansible.module_utils as package
import vicireg_render as render

# vicireg_write imports its neighbours as the dialer does (ansible.module_utils.NAME): serve them from here.
for _name in ("vicireg_fields", "vicireg_grammar", "vicireg_conffile", "vicireg_render", "vicireg_files"):
    _mod = sys.modules.setdefault("ansible.module_utils." + _name, importlib.import_module(_name))
    setattr(package, _name, _mod)
write = importlib.import_module("vicireg_write")

TEXTS = {"vicireg-sip-register.conf": "register => u:s@h\n", "vicireg-sip-peers.conf": "[c]\ntype=peer\n",
         "vicireg-pjsip.conf": "[c-reg]\ntype=registration\n"}
MAINS = {"sip.conf": "[general]\nbindport=5060\n", "pjsip.conf": "[transport-udp]\ntype=transport\n"}
ME = (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)


def lay_out(folder):
    for name, text in list(TEXTS.items()) + list(MAINS.items()):
        with open(os.path.join(folder, name), "w") as handle:
            handle.write(text)


def planned(folder):
    return write.plan(folder, TEXTS, {}, render.includes(["sip", "pjsip"]), ME[0], ME[1], "0640")


def would_write(folder):
    touched, _ = write.apply(planned(folder), backup=lambda path: None, check_mode=True)
    return sorted(t["dest"] for t in touched)


def test_after_a_write_nothing_is_pending(tmp_path):
    lay_out(str(tmp_path))
    assert sorted(write.pending(planned(str(tmp_path)))) == would_write(str(tmp_path)) != []
    write.apply(planned(str(tmp_path)), backup=lambda path: None)
    assert write.pending(planned(str(tmp_path))) == [] and would_write(str(tmp_path)) == []


MUTATIONS = st.lists(st.tuples(st.sampled_from(sorted(TEXTS) + sorted(MAINS)),
                               st.sampled_from(["content", "mode", "remove", "drop_include"])), max_size=6)


@settings(max_examples=60, deadline=None)
@given(MUTATIONS)
def test_pending_is_what_apply_would_write(tmp_path_factory, mutations):
    folder = str(tmp_path_factory.mktemp("conf"))
    lay_out(folder)
    write.apply(planned(folder), backup=lambda path: None)
    for name, how in mutations:
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            continue
        if how == "content":
            with open(path, "a") as handle:
                handle.write("; edited by hand\n")
        elif how == "mode":
            os.chmod(path, 0o600)
        elif how == "remove" and name in TEXTS:
            os.remove(path)
        elif how == "drop_include":
            with open(path) as handle:
                kept = [x for x in handle if not x.startswith("#tryinclude")]
            with open(path, "w") as handle:
                handle.writelines(kept)
    assert sorted(write.pending(planned(folder))) == would_write(folder)
