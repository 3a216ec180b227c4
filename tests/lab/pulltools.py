"""Pull mode in the lab: what a lab dialer (a chroot with python3 but no Ansible and no git) borrows from
this machine to run ansible-pull itself, a git repository inside the dialer, and ssh to the dialer.

The dialer gets, read-only and at the same absolute paths (the venv's scripts name their python by
absolute path): the controller's venv, the python the venv was made from, and this machine's git
(/usr/lib/git-core holds `git` and its helpers, at the exec path git was built with). Three bind
mounts, undone by `unmount()`: nothing is installed into the dialer, nothing is left behind.
"""
import configparser
import os
import shlex
import shutil
import subprocess
import sys

import labtools

SSH_KEY = "/var/lib/vicireg-lab/ssh/id_ed25519"
GIT_CORE = "/usr/lib/git-core"


def borrowed_paths():
    """What the dialer needs from here: the real venv, its base python, git."""
    return [os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), GIT_CORE]


def mounts_under(root):
    """Mount points at or below root, from /proc/mounts."""
    root = root.rstrip("/")
    out = []
    with open("/proc/mounts") as handle:
        for line in handle:
            target = line.split()[1].replace("\\040", " ")
            if target == root or target.startswith(root + "/"):
                out.append(line.strip())
    return out


class Borrowed:
    """Bind mounts of this machine's paths into a dialer root, read-only, at the same paths."""

    def __init__(self, root, paths):
        self.root, self.paths = root, paths
        self.mounted, self.created = [], []

    def _makedirs(self, path):
        missing = []
        while not os.path.exists(path):
            missing.append(path)
            path = os.path.dirname(path)
        for folder in reversed(missing):
            os.mkdir(folder)
            self.created.append(folder)

    def mount(self):
        for src in self.paths:
            target = os.path.join(self.root, src.lstrip("/"))
            self._makedirs(target)
            subprocess.run(["mount", "--bind", src, target], check=True)
            self.mounted.append(target)
            subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
        return self

    def unmount(self):
        for target in reversed(self.mounted):
            subprocess.run(["umount", target], check=True)
        self.mounted = []
        for folder in reversed(self.created):  # the mount points this made, deepest first
            os.rmdir(folder)
        self.created = []


def service(path=os.path.join(labtools.ROOT, "examples", "pull", "vicireg-pull.service")):
    """The example unit's command line (argv), working directory and environment, as systemd reads them."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    with open(path) as handle:
        parser.read_file(handle)
    unit = parser["Service"]
    env = dict(item.split("=", 1) for item in shlex.split(unit.get("Environment", "")))
    return shlex.split(unit["ExecStart"].replace("\\\n", " ")), unit["WorkingDirectory"], env


def ssh_argv(dialer, command):
    return ["ssh", "-F", "/dev/null", "-i", SSH_KEY, "-p", str(dialer["ports"]["ssh"]), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "root@%s" % dialer["address"], command]


def ssh(dialer, command, timeout=300):
    """command (a shell line) on the dialer, over ssh as Ansible reaches it."""
    return subprocess.run(ssh_argv(dialer, command), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class Repository:
    """A bare repository inside the dialer root (the dialer pulls from file:///srv/...), fed from a work
    tree on this machine that starts as a copy of the project's files."""

    def __init__(self, root, workdir, bare="/srv/vicireg.git"):
        self.url = "file://" + bare
        self.bare = os.path.join(root, bare.lstrip("/"))
        self.work = workdir

    def git(self, *args):
        return subprocess.run(["git", "-C", self.work, "-c", "user.name=vicireg test",
                               "-c", "user.email=test@vicireg.invalid", *args],
                              check=True, capture_output=True, text=True).stdout

    def create(self):
        """Copy the project's files (tracked and new, not ignored) into the work tree; an empty bare repo."""
        listed = subprocess.run(["git", "-C", labtools.ROOT, "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], check=True, capture_output=True).stdout
        for rel in filter(None, listed.decode().split("\0")):
            src = os.path.join(labtools.ROOT, rel)
            if not os.path.isfile(src):
                continue  # deleted in the work tree
            dst = os.path.join(self.work, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
        subprocess.run(["git", "init", "-q", "-b", "main", self.work], check=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", self.bare], check=True)
        return self

    def commit(self, files, message):
        """Write files (relative path -> text) into the work tree, commit, push to the dialer's repository."""
        for rel, text in files.items():
            path = os.path.join(self.work, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", self.bare, "main")
        return self.git("rev-parse", "HEAD").strip()

    def remove(self):
        shutil.rmtree(self.bare, ignore_errors=True)
