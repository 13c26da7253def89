#!/usr/bin/python3
"""check-deps.py: a guard that cannot go stale, run first by `make test`.

Every Python module imported under tests/, bench/ and examples/ (in .py
files, and in Python code embedded in shell scripts: heredocs and
`python3 -c '...'` strings) and every external program that the shell
scripts there call must be provided by a Debian package that
scripts/install-deps.sh installs for the right set (the package table in scripts/install-deps.sh), by
Python's standard library, by the project itself, or by a package of
Priority required (on every Debian system). Where a module or program is
present on this machine, dpkg must also agree that it comes from the
package the table names: a module installed by hand with pip, or a wrong
row, fails here instead of on a fresh machine.

Why a hand-written shell scanner: no Debian package parses bash into a
tree. The scanner tracks quotes, $( ), heredocs, comments, case patterns
and (( )) well enough for this project's scripts; a word it takes for a
command that is neither a builtin, a function of the scripts, a project
program nor a known package's program is reported, never ignored.

Exit 0 when everything is provided; else 1, one line per problem:
  check-deps: tests/integration/test_x.sh:12: calls 'tshark': no 'prog' row in the package table in scripts/install-deps.sh and not installed
"""
import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPS = os.path.join(ROOT, "scripts", "install-deps.sh")
SCAN_DIRS = ("tests", "bench", "examples")
# Programs the build makes (tests call them from $MLOPS_BUILD_DIR).
PROJECT_PROGRAMS = {"mlopsctl", "mlops-coordinator", "mlops-worker", "mlops-serve"}
# Which install set a directory's imports and programs must come from.
SET_OF_DIR = {"tests": "test", "examples": "test", "bench": "bench"}
SETS_INCLUDED = {"build": {"build"}, "test": {"build", "test"},
                 "bench": {"build", "test", "bench"}, "fresh": {"build", "fresh"}}

problems = []


def problem(where, text):
    problems.append(f"check-deps: {where}: {text}")


def read_table():
    pkgs, mods, progs = {}, {}, {}
    with open(DEPS, encoding="utf-8") as f:
        text = f.read()
    start = text.index("<<'DEPS'\n") + len("<<'DEPS'\n")
    first = text.count("\n", 0, start) + 1
    body = text[start:text.index("\nDEPS\n", start)]
    if True:
        for n, line in enumerate(body.splitlines(), first):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if len(line) != 3 or line[0] not in ("pkg", "py", "prog"):
                problem(f"the package table in scripts/install-deps.sh:{n}", "expected 'pkg SET PACKAGE', 'py MODULE PACKAGE' or 'prog NAME PACKAGE'")
                continue
            kind, a, b = line
            if kind == "pkg":
                pkgs.setdefault(b, set()).add(a)
            elif kind == "py":
                mods[a] = b
            else:
                progs[a] = b
    return pkgs, mods, progs


def dpkg_owner(path):
    """The package that installed path (following links), or None."""
    cands = [path, os.path.realpath(path)]
    for p in list(cands):  # merged /usr: dpkg may know /bin/X for /usr/bin/X
        m = re.match(r"^/usr(/s?bin/.*)$", p)
        if m:
            cands.append(m.group(1))
    for p in cands:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


_priority = {}


def is_required(pkg):
    if pkg not in _priority:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Priority}", pkg], capture_output=True, text=True)
        _priority[pkg] = r.returncode == 0 and r.stdout.strip() == "required"
    return _priority[pkg]


def installed_by_us(pkg, want_set, pkgs):
    return bool(pkgs.get(pkg, set()) & SETS_INCLUDED[want_set])


# ----------------------------------------------------------- Python side
def python_imports(source):
    """Top-level module names imported by Python source (None: not Python)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(a.name.split(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.module.split(".")[0], node.lineno))
    return names


def module_origin(mod):
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import importlib.util, sys\n"
                        "s = importlib.util.find_spec(sys.argv[1])\n"
                        "print((s.origin if s.origin not in (None, 'namespace') else list(s.submodule_search_locations)[0]) if s else '')",
                        mod], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


STDLIB = set(sys.stdlib_module_names)
PROJECT_MODULES = set()
_checked_mod = {}


def check_module(mod, where, want_set, local_dir, pkgs, mods):
    if mod in STDLIB or mod == "__future__":
        return
    if mod in PROJECT_MODULES:
        return  # a module of the project (scripts add its folder to sys.path)
    key = (mod, want_set)
    if key in _checked_mod:
        return
    _checked_mod[key] = True
    pkg = mods.get(mod)
    if pkg is None:
        problem(where, f"imports '{mod}': no 'py {mod} PACKAGE' row in the package table in scripts/install-deps.sh")
        return
    if not installed_by_us(pkg, want_set, pkgs):
        problem(where, f"imports '{mod}' from {pkg}, which install-deps.sh --{want_set} does not install (add 'pkg {want_set} {pkg}')")
    origin = module_origin(mod)
    if origin:
        owner = dpkg_owner(origin)
        if owner is None:
            problem(where, f"'{mod}' is importable from {origin}, which no Debian package installed (by hand, with pip?): a fresh machine will not have it")
        elif owner != pkg:
            problem(where, f"'{mod}' comes from {owner} here, but the package table in scripts/install-deps.sh says {pkg}")


# ------------------------------------------------------------ shell side
BASH_WORDS = set(subprocess.run(["bash", "-c", "compgen -b; compgen -k"],
                                capture_output=True, text=True).stdout.split())
PREFIX_WORDS = {"exec", "command", "nohup", "setsid", "env", "time", "sudo", "then", "do",
                "else", "elif", "if", "while", "until", "!", "{", "xargs"}
WORD = re.compile(r"[A-Za-z_./$\"'{}][^\s;|&()<>`]*")


class Shell:
    """Finds command words in bash text; collects embedded code."""

    def __init__(self, text):
        self.s = text
        self.i = 0
        self.line = 1
        self.commands = []  # (word, line)
        self.embedded = []  # (text, line)
        self.heredocs = []

    def peek(self, k=0):
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def adv(self, k=1):
        for _ in range(k):
            if self.peek() == "\n":
                self.line += 1
            self.i += 1

    def newline(self):
        self.adv()
        for delim in self.heredocs:  # bodies start after the line that opened them
            start, line = self.i, self.line
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                if self.s[self.i:end].strip() == delim:
                    self.embedded.append((self.s[start:self.i], line))
                    self.adv(end - self.i)
                    self.adv()
                    break
                self.adv(end - self.i + 1)
        self.heredocs = []

    def single_quoted(self):
        self.adv()
        start, line = self.i, self.line
        while self.i < len(self.s) and self.peek() != "'":
            self.adv()
        self.embedded.append((self.s[start:self.i], line))
        self.adv()
        return self.s[start:self.i - 1]

    def double_quoted(self):
        self.adv()
        out = []
        while self.i < len(self.s) and self.peek() != '"':
            if self.peek() == "\\":
                self.adv()
                out.append(self.peek())
                self.adv()
            elif self.peek() == "$" and self.peek(1) == "(" and self.peek(2) != "(":
                self.adv(2)
                self.script(")")
                out.append("$")
            elif self.peek() == "`":
                self.adv()
                self.script("`")
                out.append("$")
            else:
                out.append(self.peek())
                self.adv()
        self.adv()
        return "".join(out)

    def skip_arith(self):  # (( ... )) or $(( ... ))
        depth = 0
        while self.i < len(self.s):
            c = self.peek()
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    self.adv()
                    return
            self.adv()

    def word(self):
        """Reads one word (with its quotes and substitutions); returns its plain text."""
        out = []
        while self.i < len(self.s):
            c = self.peek()
            if c in " \t\n;|&<>)" or (c == "(" and not out):
                break
            if c == "(":  # NAME() or a case pattern's '(' — end of word
                break
            if c == "'":
                out.append(self.single_quoted())
            elif c == '"':
                out.append(self.double_quoted())
            elif c == "\\":
                self.adv()
                out.append(self.peek())
                self.adv()
            elif c == "$" and self.peek(1) == "(" and self.peek(2) == "(":
                self.adv()
                self.skip_arith()
                out.append("$")
            elif c == "$" and self.peek(1) == "(":
                self.adv(2)
                self.script(")")
                out.append("$")
            elif c == "`":
                self.adv()
                self.script("`")
                out.append("$")
            else:
                out.append(c)
                self.adv()
        return "".join(out)

    def script(self, until=None):
        at_command = True
        in_case = 0
        case_pattern = False
        while self.i < len(self.s):
            c = self.peek()
            if until and c == until:
                self.adv()
                return
            if c == "\n":
                self.newline()
                at_command = True
                continue
            if c in " \t":
                self.adv()
                continue
            if c == "\\" and self.peek(1) == "\n":
                self.adv(2)
                continue
            if c == "#":
                while self.i < len(self.s) and self.peek() != "\n":
                    self.adv()
                continue
            if c in ";|&":
                if self.s.startswith(";;", self.i):
                    case_pattern = True
                self.adv()
                at_command = True
                continue
            if c == "(" and self.peek(1) == "(":
                self.skip_arith()
                continue
            if c == "(":
                self.adv()
                self.script(")")
                at_command = True
                continue
            if c == ")":
                self.adv()
                at_command = True
                continue
            if c in "<>":
                if self.s.startswith("<<", self.i) and not self.s.startswith("<<<", self.i):
                    self.adv(2)
                    if self.peek() == "-":
                        self.adv()
                    while self.peek() in " \t":
                        self.adv()
                    self.heredocs.append(self.word())
                    continue
                while self.peek() in "<>&":
                    self.adv()
                while self.peek() in " \t":
                    self.adv()
                self.word()  # the redirection's target
                continue
            line = self.line
            w = self.word()
            if not w:
                self.adv()
                continue
            if w == "esac":
                in_case -= 1
                case_pattern = False
                continue
            if at_command and w.endswith("=") and self.peek() == "(":
                self.skip_arith()  # NAME=( array words )
                continue
            if in_case and case_pattern:
                # a case pattern: up to and including its ')'
                while self.i < len(self.s) and self.peek() != ")":
                    self.adv()
                self.adv()
                case_pattern = False
                at_command = True
                continue
            if w == "case":
                in_case += 1
                at_command = False
                continue
            if w == "in" and in_case:
                case_pattern = True
                at_command = True
                continue
            if w in ("for", "select"):  # for NAME in WORDS; do
                self.word_skip_to_do()
                at_command = True
                continue
            if at_command:
                if re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=", w):
                    continue  # an assignment before the command
                if w == "command" and re.match(r"[ \t]+-[vV]", self.s[self.i:]):
                    self.word_skip(2)  # command -v NAME: a lookup, not a call
                    at_command = False
                    continue
                if w in PREFIX_WORDS:
                    continue
                if w == "timeout":
                    self.commands.append((w, line))
                    self.skip_options_and_arg()
                    continue
                if self.s.startswith("()", self.i) or self.s.startswith(" ()", self.i):
                    at_command = True  # a function definition
                    continue
                self.commands.append((w, line))
                at_command = False

    def word_skip_to_do(self):
        while self.i < len(self.s):
            m = re.match(r"\s*do\b", self.s[self.i:])
            if m and self.s[self.i - 1] in ";\n \t":
                self.adv(m.end())
                return
            c = self.peek()
            if c == "\n":
                self.newline()
            elif c in "'\"$`":
                self.word()
            else:
                self.adv()

    def word_skip(self, n):
        for _ in range(n):
            while self.peek() in " \t":
                self.adv()
            self.word()

    def skip_options_and_arg(self):
        while True:
            while self.peek() in " \t":
                self.adv()
            w = self.word()
            if not w.startswith("-"):
                return  # that was the duration


def shell_functions(texts):
    names = set()
    for t in texts:
        names |= set(re.findall(r"^\s*(?:function\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*\(\)", t, re.M))
    return names


_checked_prog = {}


def check_program(w, where, want_set, funcs, pkgs, progs):
    name = w
    if "$" in name or name in BASH_WORDS or name in funcs:
        return  # a variable's value, a builtin, a function
    paths = None
    if "/" in name:
        if not name.startswith("/") or os.path.basename(name) in PROJECT_PROGRAMS:
            return  # relative: the project's own script or program
        paths, name = [name], os.path.basename(name)
    if name in PROJECT_PROGRAMS or re.match(r"^[0-9]", name):
        return
    key = (name, want_set)
    if key in _checked_prog:
        return
    _checked_prog[key] = True
    if paths is None:  # every candidate on PATH, in order
        paths = subprocess.run(["bash", "-c", 'type -P -a "$1"', "-", name],
                               capture_output=True, text=True).stdout.split()
    paths = [p for p in paths if os.path.exists(p)]
    owners = [dpkg_owner(p) for p in paths]
    pkg = progs.get(name)
    # The package's own copy wins over an earlier one installed by hand.
    owner = pkg if pkg in owners else next((o for o in owners if o), None)
    path = paths[0] if paths else ""
    if pkg is None:
        if owner and is_required(owner):
            return
        if owner:
            problem(where, f"calls '{name}' from {owner}: add 'prog {name} {owner}' to the package table in scripts/install-deps.sh and the package to the {want_set} set")
        else:
            problem(where, f"calls '{name}': no 'prog' row in the package table in scripts/install-deps.sh and not installed")
        return
    if not installed_by_us(pkg, want_set, pkgs) and not is_required(pkg):
        problem(where, f"calls '{name}' from {pkg}, which install-deps.sh --{want_set} does not install (add 'pkg {want_set} {pkg}')")
    if path and owner is None:
        problem(where, f"'{name}' is {path}, which no Debian package installed: a fresh machine will not have it")
    elif owner and owner != pkg:
        problem(where, f"'{name}' comes from {owner} here, but the package table in scripts/install-deps.sh says {pkg}")


def main():
    pkgs, mods, progs = read_table()
    files = []
    for d in SCAN_DIRS:
        for dirpath, _, names in os.walk(os.path.join(ROOT, d)):
            files += [os.path.join(dirpath, n) for n in sorted(names) if n.endswith((".py", ".sh"))]
    PROJECT_MODULES.update(os.path.basename(f)[:-3] for f in files if f.endswith(".py"))
    shell_texts = {f: open(f, encoding="utf-8").read() for f in files if f.endswith(".sh")}
    funcs = shell_functions(shell_texts.values())
    nmods = nprogs = 0
    for f in sorted(files):
        rel = os.path.relpath(f, ROOT)
        want = SET_OF_DIR[rel.split(os.sep)[0]]
        here = os.path.dirname(f)
        text = open(f, encoding="utf-8").read()
        if f.endswith(".py"):
            imports = python_imports(text)
            if imports is None:
                problem(rel, "is not valid Python")
                continue
            for mod, line in imports:
                nmods += 1
                check_module(mod, f"{rel}:{line}", want, here, pkgs, mods)
            continue
        sh = Shell(text)
        sh.script()
        for w, line in sh.commands:
            nprogs += 1
            check_program(w, f"{rel}:{line}", want, funcs, pkgs, progs)
        for body, line in sh.embedded:
            for mod, l2 in python_imports(body) or []:
                nmods += 1
                check_module(mod, f"{rel}:{line + l2 - 1}", want, here, pkgs, mods)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check-deps: {len(problems)} problem(s); see the package table in scripts/install-deps.sh", file=sys.stderr)
        return 1
    print(f"check-deps: {nmods} imports and {nprogs} program calls in {len(files)} files: every one provided")
    return 0


if __name__ == "__main__":
    sys.exit(main())
