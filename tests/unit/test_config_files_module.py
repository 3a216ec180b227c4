"""library/vicireg_config_files.py: its helpers in-process, and the whole module in a subprocess run
the way Ansible runs it (`python module.py args.json` with ANSIBLE_MODULE_ARGS)."""
import importlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
import tempfile

import pytest

import vicireg_carriers as carriers
import vicireg_render as render

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBRARY = os.path.join(ROOT, "library", "vicireg_config_files.py")
UTILS = os.path.join(ROOT, "module_utils")
SHARED = ("vicireg_fields", "vicireg_grammar", "vicireg_conffile", "vicireg_render", "vicireg_files",
          "vicireg_write")


@pytest.fixture
def cfm(monkeypatch):
    """The module, with `from ansible.module_utils import vicireg_render` served from module_utils/."""
    import ansible.module_utils as package
    for name in SHARED:
        mod = importlib.import_module(name)
        monkeypatch.setitem(sys.modules, "ansible.module_utils." + name, mod)
        monkeypatch.setattr(package, name, mod, raising=False)
    spec = importlib.util.spec_from_file_location("vicireg_config_files_under_test", LIBRARY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- _write ---------------------------------------------------------------------------------------

def test_write_gives_the_final_owner_and_mode_before_any_content(cfm, tmp_path, monkeypatch):
    dest = tmp_path / "vicireg-sip-peers.conf"
    dest.write_text("old\n")
    seen = []
    real_fchown, real_fchmod = os.fchown, os.fchmod

    def fchown(fd, uid, gid):
        seen.append(("fchown", os.fstat(fd).st_size))
        return real_fchown(fd, uid, gid)

    def fchmod(fd, mode):
        seen.append(("fchmod", os.fstat(fd).st_size))
        return real_fchmod(fd, mode)

    monkeypatch.setattr(os, "fchown", fchown)
    monkeypatch.setattr(os, "fchmod", fchmod)
    uid, gid = (4321, 4322) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    cfm.files.write_atomic(str(dest), "[acme]\nsecret=x\n", uid, gid, 0o640)
    assert seen == [("fchown", 0), ("fchmod", 0)]
    assert dest.read_text() == "[acme]\nsecret=x\n"
    info = os.lstat(dest)
    assert stat.S_ISREG(info.st_mode) and mode_of(dest) == 0o640
    assert (info.st_uid, info.st_gid) == (uid, gid)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".vicireg-")] == []


def test_write_replaces_a_symlink_at_the_destination_without_following_it(cfm, tmp_path):
    target = tmp_path / "precious"
    target.write_text("precious\n")
    dest = tmp_path / "vicireg-pjsip.conf"
    dest.symlink_to(target)
    os.chmod(target, 0o644)
    cfm.files.write_atomic(str(dest), "new\n", os.getuid(), os.getgid(), 0o600)
    assert not dest.is_symlink() and dest.read_text() == "new\n" and mode_of(dest) == 0o600
    assert target.read_text() == "precious\n" and mode_of(target) == 0o644


def test_write_never_opens_a_symlink_planted_at_a_temp_name(cfm, tmp_path, monkeypatch):
    """The temporary file is created exclusively: a name that exists (here a planted symlink) is
    skipped, never opened through."""
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    planted = tmp_path / ".vicireg-planted"
    planted.symlink_to(target)
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: iter(["planted", "fresh"]))
    dest = tmp_path / "vicireg-sip-register.conf"
    cfm.files.write_atomic(str(dest), "register => u:x@h\n", os.getuid(), os.getgid(), 0o640)
    assert target.read_text() == "precious\n"
    assert planted.is_symlink() and os.readlink(planted) == str(target)
    assert dest.read_text() == "register => u:x@h\n" and not dest.is_symlink()


def test_write_leaves_nothing_behind_when_the_rename_fails(cfm, tmp_path, monkeypatch):
    dest = tmp_path / "vicireg-iax-peers.conf"
    dest.write_text("old\n")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        cfm.files.write_atomic(str(dest), "new\n", os.getuid(), os.getgid(), 0o640)
    assert dest.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["vicireg-iax-peers.conf"]


# --- _restore -------------------------------------------------------------------------------------

def test_restore_puts_back_a_backup_with_its_mode_and_removes_a_file_that_had_none(cfm, tmp_path):
    changed = tmp_path / "vicireg-sip-peers.conf"
    changed.write_text("new\n")
    os.chmod(changed, 0o600)
    backup = tmp_path / "vicireg-sip-peers.conf.123.2024-01-01@00:00:00~"
    backup.write_text("old\n")
    os.chmod(backup, 0o644)
    created = tmp_path / "vicireg-pjsip.conf"
    created.write_text("brand new\n")
    never = tmp_path / "vicireg-iax-peers.conf"
    failed = cfm.files.restore([{"dest": str(changed), "backup_file": str(backup)},
                           {"dest": str(created), "backup_file": None},
                           {"dest": str(never), "backup_file": None}])
    assert failed == []
    assert changed.read_text() == "old\n" and mode_of(changed) == 0o644
    assert not created.exists() and not never.exists()
    assert backup.read_text() == "old\n"  # the backup stays for a later rollback


def test_restore_reports_what_it_could_not_put_back_and_goes_on(cfm, tmp_path):
    first = tmp_path / "a.conf"
    first.write_text("new\n")
    second = tmp_path / "b.conf"
    second.write_text("new\n")
    failed = cfm.files.restore([{"dest": str(first), "backup_file": str(tmp_path / "missing~")},
                           {"dest": str(second), "backup_file": None}])
    assert len(failed) == 1 and failed[0].startswith(str(first))
    assert not second.exists()


# --- _with_include --------------------------------------------------------------------------------

LINE = "#tryinclude vicireg-sip-register.conf"


@pytest.mark.parametrize("header", ["[general]", "[general] ; the settings", "  [general]  "])
def test_with_include_goes_right_after_general(cfm, header):
    text = "; sip.conf\n%s\nbindport=5060\n\n[peer]\nhost=x\n" % header
    out = cfm.write.with_include(text, LINE, "general")
    assert out.splitlines() == ["; sip.conf", header, LINE, "bindport=5060", "", "[peer]", "host=x"]
    assert cfm.write.with_include(out, LINE, "general") == out  # idempotent


@pytest.mark.parametrize("text", ["[peer]\nhost=x\n", "", "; [general]\n[peer]\n", "[general](+)\n[generalx]\n",
                                  "[peer]\ngeneral=1\n"])
def test_with_include_refuses_a_file_without_general(cfm, text):
    assert cfm.write.with_include(text, LINE, "general") is None


def test_with_include_at_the_end_adds_a_missing_newline_first(cfm):
    line = "#tryinclude vicireg-sip-peers.conf"
    assert cfm.write.with_include("[general]\n[peer]\nhost=x", line, "end") == "[general]\n[peer]\nhost=x\n%s\n" % line
    assert cfm.write.with_include("", line, "end") == line + "\n"
    done = "[general]\n%s\n" % line
    assert cfm.write.with_include(done, line, "end") == done


# --- the whole module -----------------------------------------------------------------------------

RUNNER = """
import runpy, sys
sys.path.insert(0, %(utils)r)
import ansible.module_utils as package
for name in %(shared)r:
    mod = __import__(name)
    sys.modules["ansible.module_utils." + name] = mod
    setattr(package, name, mod)
sys.argv = [%(library)r, sys.argv[1]]
runpy.run_path(%(library)r, run_name="__main__")
"""


def run_module(tmp_path, args, **internal):
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER % {"utils": UTILS, "shared": SHARED, "library": LIBRARY})
    args = dict(args, **{"_ansible_" + k: v for k, v in internal.items()})
    argfile = tmp_path / "args.json"
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    out = subprocess.run([sys.executable, str(runner), str(argfile)], capture_output=True, text=True, timeout=60,
                         cwd=str(tmp_path))
    try:
        result = json.loads(out.stdout)
    except ValueError:
        raise AssertionError("module output is not JSON: %s\n%s" % (out.stdout[-2000:], out.stderr[-2000:]))
    return result, out.stdout


def _owner():
    import grp
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def _render(carrier_list, drivers=("sip", "iax2")):
    return render.render_files(carriers.carrier_plan(carrier_list), drivers)


CARRIERS = [{"name": "ipauth", "host": "192.0.2.10"},
            {"name": "iaxco", "protocol": "iax2", "registration": "user:Zq9Secret1@iax.example",
             "options": {"dbsecret": "Zq9Family/key"}}]


def _args(conf, rendered, drivers=("sip", "iax2")):
    owner, group = _owner()
    return {"conf_dir": str(conf), "files": rendered["templates"], "secrets": rendered["secrets"],
            "includes": [{"file": f, "line": line, "where": where, "driver": d}
                         for f, line, where, d in render.INCLUDES if d in drivers],
            "owner": owner, "group": group, "mode": "0640"}


def _conf(tmp_path, sip="[general]\nbindport=5060\n\n[vicidial]\nhost=dynamic\n", iax="[general]\nbindport=4569\n"):
    conf = tmp_path / "asterisk"
    conf.mkdir()
    (conf / "sip.conf").write_text(sip)
    (conf / "iax.conf").write_text(iax)
    return conf


def test_module_writes_every_file_with_its_secrets_and_diff_shows_them_masked(tmp_path):
    conf = _conf(tmp_path)
    rendered = _render(CARRIERS)
    result, stdout = run_module(tmp_path, _args(conf, rendered), diff=True)
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    for name, text in rendered["files"].items():
        assert (conf / name).read_text() == text
        assert mode_of(conf / name) == 0o640
    sip = (conf / "sip.conf").read_text()
    assert sip.startswith("[general]\n#tryinclude vicireg-sip-register.conf\nbindport=5060\n")
    assert sip.endswith("host=dynamic\n#tryinclude vicireg-sip-peers.conf\n")
    touched = {os.path.basename(t["dest"]): t for t in result["touched"]}
    assert set(touched) == set(rendered["files"]) | {"sip.conf", "iax.conf"}
    assert touched["sip.conf"]["backup_file"] and touched["vicireg-sip-peers.conf"]["backup_file"] is None
    assert touched["iax.conf"]["driver"] == "iax2"
    # Nothing the module returns holds a secret; the diff of each file is its template, redacted.
    assert "Zq9" not in stdout
    diffs = {os.path.basename(d["after_header"]): d for d in result["diff"]}
    for name, template in rendered["templates"].items():
        assert diffs[name]["after"] == render.redact_config(template)
        assert diffs[name]["before"] == ""
    # The secrets are a no_log option: Ansible replaces any of them it finds in the result (the
    # invocation's own echo of them aside), so a diff holding one would show this placeholder.
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" not in json.dumps([result["diff"], result["touched"]])
    assert "host=192.0.2.10" in diffs["vicireg-sip-peers.conf"]["after"]
    # A second run with the same content changes nothing.
    again, _ = run_module(tmp_path, _args(conf, rendered), diff=True)
    assert again["changed"] is False and again["touched"] == [] and again["diff"] == []


def test_module_writes_nothing_when_an_include_cannot_be_added(tmp_path):
    conf = _conf(tmp_path, sip="[vicidial]\nhost=dynamic\n")  # no [general] for the register include
    rendered = _render(CARRIERS)
    result, stdout = run_module(tmp_path, _args(conf, rendered))
    assert result["failed"] is True and "no [general]" in result["msg"] and "nothing was changed" in result["msg"]
    assert sorted(os.listdir(conf)) == ["iax.conf", "sip.conf"]
    assert (conf / "sip.conf").read_text() == "[vicidial]\nhost=dynamic\n"
    assert (conf / "iax.conf").read_text() == "[general]\nbindport=4569\n"
    assert "Zq9" not in stdout


def test_module_writes_nothing_when_a_main_file_is_missing(tmp_path):
    conf = _conf(tmp_path)
    os.remove(conf / "iax.conf")
    result, _ = run_module(tmp_path, _args(conf, _render(CARRIERS)))
    assert result["failed"] is True and "does not exist" in result["msg"]
    assert sorted(os.listdir(conf)) == ["sip.conf"]


def test_module_refuses_a_file_that_is_not_the_toolkits(tmp_path):
    conf = _conf(tmp_path)
    args = _args(conf, _render(CARRIERS))
    args["files"] = dict(args["files"], **{"../sip.conf": "[evil]\n"})
    result, _ = run_module(tmp_path, args)
    assert result["failed"] is True and "not a file of this toolkit" in result["msg"]
    assert sorted(os.listdir(conf)) == ["iax.conf", "sip.conf"]


def test_module_in_check_mode_reports_but_writes_nothing(tmp_path):
    conf = _conf(tmp_path)
    result, _ = run_module(tmp_path, _args(conf, _render(CARRIERS)), check_mode=True, diff=True)
    assert result["changed"] is True and len(result["touched"]) == 6
    assert sorted(os.listdir(conf)) == ["iax.conf", "sip.conf"]
    assert (conf / "sip.conf").read_text().count("#tryinclude") == 0


def test_module_restore_puts_back_what_a_run_changed(tmp_path):
    conf = _conf(tmp_path)
    first, _ = run_module(tmp_path, _args(conf, _render(CARRIERS)))
    changed = _render([{"name": "ipauth", "host": "192.0.2.99"}] + CARRIERS[1:])
    second, _ = run_module(tmp_path, _args(conf, changed))
    assert [os.path.basename(t["dest"]) for t in second["touched"]] == ["vicireg-sip-peers.conf"]
    result, _ = run_module(tmp_path, {"restore": second["touched"]})
    assert result["changed"] is True
    assert "host=192.0.2.10" in (conf / "vicireg-sip-peers.conf").read_text()
    result, _ = run_module(tmp_path, {"restore": first["touched"]})
    assert not (conf / "vicireg-pjsip.conf").exists() and not (conf / "vicireg-iax-peers.conf").exists()
    assert (conf / "sip.conf").read_text() == "[general]\nbindport=5060\n\n[vicidial]\nhost=dynamic\n"

