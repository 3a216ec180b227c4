"""carrier-lint PATH...: check the carriers of inventory files and folders without running Ansible.

Reads group_vars/ and host_vars/ files (.yml, .yaml, .json or no extension; group or host names may
hold dots) and YAML inventories (vars of all, of groups and children, of hosts), following symbolic
links, and checks each `carriers` variable, and each `*_carriers` variable that is a list of carrier
mappings, with the role's own preflight. Prints `file:line:column: carrier: message` per problem on
standard output; notes (what was not checked: vault content without a password, Jinja expressions,
INI inventories) go to standard error, prefixed `note:`.

Exit status: 0 no problem, 1 some problem, 2 usage error (a path that does not exist, an
unreadable vault password file).
"""
import argparse
import os
import re
import sys

import yaml

from vicireg_lint import check, source

VARS_DIRS = ("group_vars", "host_vars")
# Ansible reads group_vars/NAME and host_vars/NAME (a host name may hold dots: dialer1.example.com,
# 10.0.0.5.yml), and in a folder group_vars/NAME/ the files with these extensions, or none. Outside
# them, YAML files are read as YAML inventories (JSON files only when named: seldom inventories).
VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")
INVENTORY_EXTENSIONS = (".yml", ".yaml")
# Never a vars file or an inventory, whatever the folder: templates, notes, editor and patch leftovers.
NOT_VARS_EXTENSIONS = (".j2", ".md", ".txt", ".rst", ".swp", ".swo", ".bak", ".orig", ".rej", ".tmp", ".retry",
                       ".py", ".pyc", ".sh", ".cfg", ".conf", ".log", ".old", ".dist", ".sample", ".disabled",
                       ".csv", ".xml", ".html", ".toml", ".patch", ".diff", ".gz", ".zip", ".pem", ".key", ".crt")
# Inventory file names Ansible reads as YAML when they are YAML, else as INI.
INVENTORY_NAMES = ("hosts", "inventory")
# A YAML inventory group: a mapping of these (or nothing).
GROUP_KEYS = ("hosts", "children", "vars")
# An INI inventory: a [group] line, or a carrier variable set on a line (`carriers=[...]`).
INI_SECTION = re.compile(r"^[ \t]*\[[^\]\n]+\][ \t]*$", re.M)
INI_CARRIERS = re.compile(r"(?:^|[ \t])(([A-Za-z_][A-Za-z0-9_]*_)?carriers)[ \t]*=", re.M)
CARRIER_VAR = re.compile(r"(.+_)?carriers\Z")
# A carrier variable holding more values than this (aliases expanded) is refused, not walked: an alias
# bomb (`&a [*a, *a, ...]` nested) would otherwise take hours. Real lists hold a few thousand.
VALUES_MAX = 100000


def _printable(text):
    """One line of text: unprintable characters written as escapes (a message must not fake a line)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


class Report:
    def __init__(self):
        self.problems = []
        self.notes = []

    def add(self, path, line, column, label, message, note=False):
        entry = (_printable(path), line, column, _printable(label), _printable(message))
        (self.notes if note else self.problems).append(entry)

    def add_found(self, path, found):
        line, column = source.position(found.node, found.index)
        self.add(path, line, column, found.label, found.message, found.note)


def kind_of(path, named=False):
    """How a file is read: 'vars' (group_vars/host_vars), 'yaml' (a YAML inventory), 'auto' (YAML, else
    INI, as Ansible tries them), 'ini' (an INI inventory: not checked), or None (not read). named: the
    file was named on the command line (else found in a folder)."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    name, ext = parts[-1], os.path.splitext(parts[-1])[1].lower()
    if name.startswith(".") or name.endswith("~") or ext in NOT_VARS_EXTENSIONS:
        return None
    at = [i for i, part in enumerate(parts[:-1]) if part in VARS_DIRS]
    if at:
        if len(parts) - at[-1] == 2:  # group_vars/NAME: NAME is a group or host name, dots and all
            return "vars"
        return "vars" if ext in VARS_EXTENSIONS else None
    if ext in INVENTORY_EXTENSIONS or (named and ext == ".json"):
        return "yaml"
    if ext == ".ini":
        return "ini"
    if name.split(".")[0] in INVENTORY_NAMES or named:
        return "auto" if not ext else "ini"  # Ansible reads YAML inventories by their extension, or none
    return None


def files_of(path):
    """The files to read under a folder, in order, following symbolic links (each real folder once)."""
    found, seen = [], set()
    for top, dirs, files in os.walk(path, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back up the tree, or a second link to a folder already read
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            full = os.path.join(top, name)
            if kind_of(full) is not None:
                found.append(full)
    return found


def _is_group(value):
    return value is None or (isinstance(value, dict) and (not value or any(k in GROUP_KEYS for k in value)))


def _vars_mappings(root, value, vars_file):
    """(vars node, vars dict) of every place in a file where variables are set."""
    if not isinstance(value, dict) or not isinstance(root, yaml.MappingNode):
        return []
    # A file outside group_vars/host_vars is a vars file when a carrier variable in it is not a group
    # (a YAML inventory may well have a group named sip_carriers: {hosts: ...}).
    if vars_file or any(isinstance(k, str) and CARRIER_VAR.match(k) and not _is_group(v) for k, v in value.items()):
        return [(root, value)]
    out = []
    todo = [(root, value)]
    seen = set()
    while todo:  # YAML inventory: group -> {hosts: {host: vars}, vars: {...}, children: {group: ...}}
        groups_node, groups = todo.pop(0)
        for name, group in groups.items() if isinstance(groups, dict) else ():
            _, group_node = source.pair(groups_node, name)
            if not isinstance(group, dict) or group_node is None or id(group_node) in seen:
                continue
            seen.add(id(group_node))
            _, vars_node = source.pair(group_node, "vars")
            if isinstance(group.get("vars"), dict):
                out.append((vars_node, group["vars"]))
            _, hosts_node = source.pair(group_node, "hosts")
            for host, host_vars in (group.get("hosts") or {}).items() if isinstance(group.get("hosts"), dict) else ():
                if isinstance(host_vars, dict):
                    out.append((source.pair(hosts_node, host)[1], host_vars))
            _, children_node = source.pair(group_node, "children")
            if isinstance(group.get("children"), dict):
                todo.append((children_node, group["children"]))
    return out


class Parsed:
    """One file read: its YAML nodes and values (a vault file decrypted when a secret was given)."""

    def __init__(self, path, vars_file, loaded):
        self.path, self.vars_file = path, vars_file
        self.root, self.value, self.duplicates, self.vault_events = loaded
        self.variables = _vars_mappings(self.root, self.value, vars_file)


def read_text(path, text, report, decrypter, vars_file, depth=0):
    """Parsed, or None when the file cannot be read as YAML (reported)."""
    if text.lstrip().startswith(source.VAULT_HEADER):
        problem = source.envelope_problem(text)
        if problem:
            return report.add(path, 1, 1, "vault", "the file %s" % problem)
        if decrypter is None:
            return report.add(path, 1, 1, "vault", "vault-encrypted file: its structure is checked, its content "
                              "is not (give --vault-password-file or --vault-id)", note=True)
        try:
            plain = decrypter.decrypt(text)
        except ValueError as exc:
            return report.add(path, 1, 1, "vault", "the file %s" % exc)
        report.add(path, 1, 1, "vault", "vault-encrypted file decrypted: lines and columns are those of "
                   "its decrypted content", note=True)
        if depth == 0:
            return read_text(path, plain, report, decrypter, vars_file, depth + 1)
        return report.add(path, 1, 1, "vault", "a vault inside a vault is not read")
    try:
        parsed = Parsed(path, vars_file, source.load(text, decrypter))
    except source.YamlProblem as exc:
        return report.add(path, exc.line, exc.column, "yaml", str(exc))
    if decrypter is None and "!vault" in text:
        count = len([n for n in _nodes(parsed.root) if n.tag in ("!vault", "!vault-encrypted")])
        if count:
            report.add(path, 1, 1, "vault", "%d inline !vault value(s): their structure is checked, their content "
                       "is not (give --vault-password-file or --vault-id)" % count, note=True)
    return parsed


def known_variables(parsed_files):
    """{name: value} of the variables set to one plain string (no Jinja, vault decrypted) in all files."""
    values = {}
    for parsed in parsed_files:
        for _, variables in parsed.variables:
            for name, value in variables.items():
                plain = isinstance(value, str) and not check.jinja_spans(value)
                values.setdefault(name, set()).add(str(value) if plain else object())
    return {name: seen.pop() for name, seen in values.items() if len(seen) == 1 and isinstance(next(iter(seen)), str)}


def check_parsed(parsed, report, known):
    path, value = parsed.path, parsed.value
    if parsed.vars_file and value is not None and not isinstance(value, dict):
        report.add(path, 1, 1, "yaml", "a vars file must hold a mapping of variables, got %s" % type(value).__name__)
    labels = {}  # node id -> carrier label, for duplicate keys and vault values inside carriers
    for vars_node, variables in parsed.variables:
        for var, var_value in variables.items():
            if not isinstance(var, str) or not CARRIER_VAR.match(var):
                continue
            _, node = source.pair(vars_node, var)
            if node is not None and source.expanded_size(node, VALUES_MAX) is None:
                report.add(path, *source.position(node), var, "holds more than %d values once its YAML aliases are "
                           "expanded, or contains itself (an alias bomb?): not checked" % VALUES_MAX)
                continue
            for found in _check_var(var, var_value, node, known):
                report.add_found(path, found)
            _label_carriers(var, var_value, node, labels)
    for node, kind, message in parsed.vault_events:
        line, column = source.position(node)
        report.add(path, line, column, labels.get(id(node), "vault"), message, note=(kind == "note"))
    for node_id, dups in parsed.duplicates.items():
        for key, key_node, first in dups:
            line, column = source.position(key_node)
            report.add(path, line, column, labels.get(node_id, "yaml"),
                       "duplicate key %s (also on line %d): YAML keeps only the last one"
                       % (check.carriers.fields._show(key), first.start_mark.line + 1))


def _nodes(root):
    seen, todo = set(), [root] if root is not None else []
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, yaml.MappingNode):
            todo += [n for kv in node.value for n in kv]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value


def _check_var(var, value, node, known):
    """Found of one variable: `carriers` always (as the role reads it); `*_carriers` when a list of mappings."""
    why = check._unseen(value)
    if why and not isinstance(value, list):
        what = "vault-encrypted" if why == "vault" else "a Jinja expression"
        return [check.Found(node, var, "%s is %s: not checked" % (var, what), note=True)]
    if var != "carriers" and not (isinstance(value, list) and any(isinstance(c, dict) for c in value)):
        return []
    return check.check_list(value, node, var, known)


def _label_carriers(var, value, node, labels):
    """Every node of a carrier variable labelled: the carrier's label inside a carrier, else the variable."""
    labels.update((id(n), var) for n in _nodes(node))
    if isinstance(value, list) and isinstance(node, yaml.SequenceNode):
        for index, (item, item_node) in enumerate(zip(value, node.value)):
            label = check.carrier_label(item, index)
            labels.update((id(n), label) for n in _nodes(item_node))


def _ini_notes(path, text, report):
    """Notes for an INI inventory: its variables are not checked (carriers set in it said where)."""
    why = "carrier-lint reads YAML inventories and group_vars/host_vars files only; set it there to have it checked"
    lines = [(text.count("\n", 0, m.start(1)) + 1, m.start(1) - (text.rfind("\n", 0, m.start(1)) + 1) + 1, m.group(1))
             for m in INI_CARRIERS.finditer(text)]
    for line, column, var in lines:
        report.add(path, line, column, var, "%s is set in an INI inventory: not checked (%s)" % (var, why), note=True)
    if not lines:
        report.add(path, 1, 1, "ini", "INI inventory: its variables are not checked (%s)"
                   % why.replace(" it ", " them "), note=True)


def _is_ini(text):
    """An inventory Ansible reads as INI: not a YAML mapping, and INI-shaped."""
    if text.lstrip().startswith(source.VAULT_HEADER) or not (INI_SECTION.search(text) or INI_CARRIERS.search(text)):
        return False
    try:
        return not isinstance(source.load(text)[1], dict)
    except source.YamlProblem:
        return True


def read_file(path, report, decrypter, kind="vars"):
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        return report.add(path, 1, 1, "file", "cannot be read: %s" % exc.strerror)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return report.add(path, 1, 1, "yaml", "not UTF-8 text (byte %d)" % exc.start)
    if kind == "ini" or (kind == "auto" and _is_ini(text)):
        return _ini_notes(path, text, report)
    return read_text(path, text, report, decrypter, kind == "vars")


def main(argv=None, stdout=None, stderr=None):
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    for stream in (out, err):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = argparse.ArgumentParser(prog="carrier-lint", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="PATH", help="inventory files or folders")
    parser.add_argument("--vault-password-file", action="append", default=[], metavar="FILE",
                        help="decrypt vaults with this password file (or script), as ansible-playbook")
    parser.add_argument("--vault-id", action="append", default=[], metavar="[LABEL@]FILE",
                        help="decrypt vaults with this vault id, as ansible-playbook")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only, no notes")
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        parser.error("no such file or folder: %s" % ", ".join(_printable(p) for p in missing))
    decrypter = None
    if args.vault_password_file or args.vault_id:
        try:
            decrypter = source.Decrypter(args.vault_password_file, args.vault_id)
        except ValueError as exc:
            parser.error(str(exc))
    report = Report()
    names, warnings = [], []
    for path in args.paths:
        if os.path.isdir(path):
            found = files_of(path)
            names += [(n, kind_of(n)) for n in found]
            if not found:
                warnings.append("carrier-lint: warning: %s: no group_vars/host_vars file or inventory in it: "
                                "nothing checked\n" % _printable(path))
        elif kind_of(path, named=True) is None:
            report.add(path, 1, 1, "file", "not a vars file or an inventory (by its name): not read", note=True)
        else:
            names.append((path, kind_of(path, named=True)))
    parsed = []
    for name, kind in names:
        try:
            parsed.append(read_file(name, report, decrypter, kind))
        except Exception as exc:  # never a traceback (it could quote a secret): name the file and the kind
            report.add(name, 1, 1, "carrier-lint", "could not be read (%s)" % type(exc).__name__)
    parsed = [p for p in parsed if p is not None]
    known = known_variables(parsed)
    for item in parsed:
        try:
            check_parsed(item, report, known)
        except RecursionError:
            report.add(item.path, 1, 1, "yaml", "a value contains itself (a recursive alias) or is nested too deeply")
        except Exception as exc:
            report.add(item.path, 1, 1, "carrier-lint", "could not be checked (%s)" % type(exc).__name__)
    count = len(names)
    for entry in sorted(set(report.problems)):
        out.write("%s:%d:%d: %s: %s\n" % entry)
    for warning in warnings:  # even with --quiet: a folder with nothing to check is likely a wrong path
        err.write(warning)
    if not args.quiet:
        for entry in sorted(set(report.notes)):
            err.write("%s:%d:%d: note: %s: %s\n" % entry)
        err.write("carrier-lint: %d file(s), %d problem(s)\n" % (count, len(set(report.problems))))
    return 1 if report.problems else 0
