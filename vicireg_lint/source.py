"""Reading inventory YAML the way Ansible does, keeping each value's node (for line and column).

PyYAML's SafeLoader with Ansible's two tags (`!vault`, `!unsafe`); merge keys (`<<`) are PyYAML's own.
Duplicate keys are collected before the merge keys are flattened, since YAML keeps the last one
silently. Vault texts are decrypted with ansible-core's own VaultLib when a secret is given.
"""
import re

import yaml

VAULT_HEADER = "$ANSIBLE_VAULT;"
_ENVELOPE = re.compile(r"\$ANSIBLE_VAULT;[0-9]+\.[0-9]+;[A-Za-z0-9_]+(;[^\s;]+)?\s*\n([0-9a-fA-F]+\s*\n?)+\Z")


class Vault:
    """An encrypted value not decrypted (no secret given, or a wrong one)."""

    def __init__(self, problem=None):
        self.problem = problem

    def __repr__(self):
        return "<vault-encrypted>"


class Unsafe(str):
    """An `!unsafe` string: Ansible never templates it, so braces in it are not Jinja."""


class YamlProblem(Exception):
    """A file that is not YAML Ansible can read: line and column (1-based) and a message without
    the file's text (the text may hold a secret)."""

    def __init__(self, message, line=1, column=1):
        super().__init__(message)
        self.line = line
        self.column = column


def envelope_problem(text):
    """None when text is shaped like a vault (header, then hex lines), else what is wrong."""
    text = text.strip() + "\n"
    if not text.startswith(VAULT_HEADER):
        return "does not start with %s" % VAULT_HEADER
    if not _ENVELOPE.match(text):
        return "is not a vault: the header or the hexadecimal body is malformed"
    return None


class Decrypter:
    """Decrypts vault texts with ansible-core's VaultLib and the secrets of --vault-password-file /
    --vault-id (a script as a password file works as with ansible-playbook)."""

    def __init__(self, password_files=(), vault_ids=()):
        try:
            from ansible.parsing.dataloader import DataLoader
            from ansible.parsing.vault import VaultLib, get_file_vault_secret
        except ImportError:
            raise ValueError("decrypting vaults needs ansible-core (pip install 'vicireg-lint[vault]')")
        loader = DataLoader()
        secrets = []
        for spec in list(vault_ids) + list(password_files):
            label, _, source = spec.rpartition("@") if spec in vault_ids else ("", "", spec)
            label = label or "default"
            if source == "prompt":
                raise ValueError("--vault-id %s: prompting is not supported, give a file" % spec)
            try:
                secret = get_file_vault_secret(filename=source, vault_id=label, loader=loader)
                secret.load()
            except Exception as exc:  # ansible's errors name the file, never the password
                raise ValueError("vault secret %s: %s" % (source, str(exc).splitlines()[0]))
            secrets.append((label, secret))
        self._vault = VaultLib(secrets)

    def decrypt(self, text):
        """The plaintext (str); ValueError without any of the text when it cannot be decrypted."""
        try:
            return self._vault.decrypt(text.strip().encode("ascii")).decode("utf-8")
        except UnicodeError:
            raise ValueError("the decrypted content is not UTF-8 text")
        except Exception:
            raise ValueError("cannot be decrypted with the vault secret(s) given (wrong password or vault id)")


class _Loader(yaml.SafeLoader):
    decrypter = None

    def __init__(self, stream):
        super().__init__(stream)
        self.vault_events = []  # (node, 'problem' or 'note', message)


def _construct_vault(loader, node):
    text = loader.construct_scalar(node)
    problem = envelope_problem(text)
    if problem:
        problem = "the !vault value %s" % problem
    elif loader.decrypter is not None:
        try:
            return loader.decrypter.decrypt(text)
        except ValueError as exc:
            problem = "the !vault value %s" % exc
    if problem:
        loader.vault_events.append((node, "problem", problem))
    return Vault(problem)


def _construct_unsafe(loader, node):
    if isinstance(node, yaml.ScalarNode):
        return Unsafe(loader.construct_scalar(node))
    return loader.construct_undefined(node)


for _tag in ("!vault", "!vault-encrypted"):
    _Loader.add_constructor(_tag, _construct_vault)
_Loader.add_constructor("!unsafe", _construct_unsafe)


def _duplicates(root):
    """{id(mapping node): [(key text, key node, first key node)]} over every mapping, each node once."""
    found = {}
    seen = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = {}
            for key, value in node.value:
                todo += [key, value]
                if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    continue
                ident = (key.tag, key.value)
                if ident in keys:
                    found.setdefault(id(node), []).append((key.value, key, keys[ident]))
                keys[ident] = key
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return found


def _marked(exc):
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):
        return "unacceptable character #x%04x: control characters are not allowed in YAML" % exc.character, None
    parts = [p for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p]
    return "not valid YAML: %s" % ", ".join(parts)[:300], mark


def load(text, decrypter=None):
    """(root node, value, duplicates, vault events) of a one-document YAML text; YamlProblem if unreadable.

    The value is what Ansible would see: merges applied, the last of duplicate keys kept."""
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here already
        loader.decrypter = decrypter
        root = loader.get_single_node()
        if root is None:
            return None, None, {}, []
        duplicates = _duplicates(root)
        value = loader.construct_document(root)
    except RecursionError:
        raise YamlProblem("nested too deeply to be read")
    except yaml.YAMLError as exc:
        message, mark = _marked(exc)
        if mark is None and isinstance(exc, yaml.reader.ReaderError):
            line = text.count("\n", 0, exc.position) + 1
            column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
            raise YamlProblem(message, line, column)
        raise YamlProblem(message, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1)
    finally:
        if loader is not None:
            loader.dispose()
    return root, value, duplicates, loader.vault_events


def pair(node, key):
    """(key node, value node) Ansible reads for key in a mapping node (the last one), or (None, None)."""
    found = (None, None)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == (key if isinstance(key, str) else str(key)):
                found = (k, v)
    return found


def position(node, index=None):
    """(line, column), 1-based, of a node, or of character index of its string when the scalar is
    written on one line with nothing escaped before that character."""
    if node is None:  # a key YAML spells differently from its value (a number, a bool): the file's start
        return 1, 1
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if index is None or not isinstance(node, yaml.ScalarNode) or node.start_mark.line != node.end_mark.line:
        return line, column
    raw = node.start_mark.buffer[node.start_mark.pointer:node.end_mark.pointer] if node.start_mark.buffer else ""
    if node.style is None and raw[:index] == node.value[:index]:
        return line, column + index
    if node.style in ("'", '"') and raw[1:index + 1] == node.value[:index]:
        return line, column + 1 + index
    return line, column


def expanded_size(node, limit):
    """How many values node holds once its aliases are expanded (as Ansible sees it), counted per node
    once; None when more than limit or when a value contains itself (an alias bomb or loop)."""
    sizes, todo = {}, [(node, False)]
    while todo:
        item, done = todo.pop()
        if id(item) in sizes and sizes[id(item)] is not None:
            continue
        children = ([n for kv in item.value for n in kv] if isinstance(item, yaml.MappingNode) else
                    item.value if isinstance(item, yaml.SequenceNode) else [])
        if done:
            sizes[id(item)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(item)] > limit:
                return None
            continue
        if id(item) in sizes:  # reached again while its own contents are being counted
            return None
        sizes[id(item)] = None
        todo.append((item, True))
        todo += [(c, False) for c in children if sizes.get(id(c)) is None]
    return sizes[id(node)]
