#!/usr/bin/env python3
"""tests/docs_check.py - what the man page must say, read from the binary
and the sources, and compared with what the man page does say
(tests/t_docs.sh runs each command as one check).

  docs_check.py options HELP MAN SECTION   --help's options = the man page's list
  docs_check.py synopsis HELP MAN SUB      --help's options = the SYNOPSIS's
  docs_check.py getopt SRCDIR MAN          every long option the code accepts is in the man page
  docs_check.py subcommands SRCDIR         the subcommands main.c dispatches, one a line
  docs_check.py events SRCDIR MAN          every event the code can log is in DIAGNOSTICS, and back
  docs_check.py keys SRCDIR MAN            every key the code can log is in DIAGNOSTICS
  docs_check.py links FILE...              every relative link names a file that exists

An option is its long name, its short letter (if any) and whether it takes
a value. The man page's option lists are the .Bl lists that follow a
comment line `.\\" drift: options of SECTION` (SECTION: "tester", or a
subcommand's name). Exit 0 when they agree; otherwise one line a
difference on stdout, exit 1.
"""
import os
import re
import sys


# ---- --help -----------------------------------------------------------

# "  -d, --server ADDR[:PORT]  text" or "      --monitor             text":
# a value is one word after a single space; two spaces start the text.
HELP_OPT = re.compile(r"^ {2,}(?:-([A-Za-z0-9]), )?--([a-z0-9][a-z0-9-]*)( [^ ]\S*)?(?: {2,}|$)")
HELP_SHORT_ONLY = re.compile(r"^ {2,}-([A-Za-z0-9])(?:, | / )")


def help_options(path):
    """{long: (short or '', takes_value)} from a --help text."""
    opts = {}
    with open(path) as f:
        for line in f:
            m = HELP_OPT.match(line.rstrip("\n"))
            if m:
                opts[m.group(2)] = (m.group(1) or "", bool(m.group(3)))
    if not opts:
        raise SystemExit("no option found in %s: is it a --help text?" % path)
    return opts


# ---- the man page -----------------------------------------------------

def man_lines(path):
    with open(path) as f:
        return f.read().split("\n")


def flags_in(line):
    """The Fl arguments of one mdoc line, as written: 'd', '-server'."""
    words = line.replace("\\-", "-").split()
    if words and words[0].startswith("."):
        words[0] = words[0][1:]           # the line's own macro: .Fl h
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == "Fl"]


def item_option(line):
    """(long, short, takes_value) of an `.It Fl ...` line, or None."""
    if not line.startswith(".It "):
        return None
    longs, shorts = [], []
    for fl in flags_in(line):
        fl = fl.rstrip(",")
        (longs if fl.startswith("-") else shorts).append(fl.lstrip("-"))
    if not longs and not shorts:
        return None
    value = bool(re.search(r"(^|\s)(Ar|Cm|Oo|Op)(\s|$)", line.split("Fl", 1)[1]))
    return (longs[0] if longs else "", shorts[0] if shorts else "", value, line)


def man_options(path, section):
    """{long: (short, takes_value)} of the list marked for section."""
    lines = man_lines(path)
    mark = '.\\" drift: options of %s' % section
    try:
        i = lines.index(mark)
    except ValueError:
        raise SystemExit("the man page has no list marked '%s'" % mark)
    while i < len(lines) and not lines[i].startswith(".Bl"):
        i += 1
    depth, opts, problems = 0, {}, []
    for line in lines[i:]:
        if line.startswith(".Bl"):
            depth += 1
        elif line.startswith(".El"):
            depth -= 1
            if depth == 0:
                break
        elif depth == 1:
            it = item_option(line)
            if it is None and line.startswith(".It"):
                problems.append("an item that names no option: %s" % line)
            elif it:
                long_, short, value, _ = it
                key = long_ or "-" + short
                if key in opts:
                    problems.append("listed twice: %s" % key)
                opts[key] = (short, value)
    return opts, problems


def synopsis_blocks(path):
    """{section: set of flags written} from SYNOPSIS: a block starts at .Nm;
    flags after a `.Cm NAME` line in it are subcommand NAME's, the others
    the tester's (`dns-blackhole-tester --no-confine scan ...`)."""
    lines = man_lines(path)
    blocks, cur, inside = {"tester": set()}, None, False
    for line in lines:
        if line.startswith(".Sh "):
            inside = line.strip() == ".Sh SYNOPSIS"
            continue
        if not inside:
            continue
        if line.strip() == ".Nm":
            cur = "tester"
            continue
        if cur and line.startswith(".Cm "):
            cur = line.split()[1]
            blocks.setdefault(cur, set())
            continue
        if cur:
            for fl in flags_in(line):
                for part in fl.split("|"):
                    part = part.strip(",")
                    if part:
                        blocks[cur].add(part)
    return blocks


def section_text(path, name):
    out, inside = [], False
    for line in man_lines(path):
        if line.startswith(".Sh "):
            inside = line[4:].strip() == name
            continue
        if inside:
            out.append(line)
    return out


# ---- the sources --------------------------------------------------------

def c_sources(srcdir, ext=(".c",)):
    out = {}
    for n in sorted(os.listdir(srcdir)):
        if n.endswith(ext):
            with open(os.path.join(srcdir, n)) as f:
                text = f.read()
            # comments out: a name in a comment is not code
            text = re.sub(r"/\*.*?\*/", lambda m: " " * len(m.group(0)), text, flags=re.S)
            out[n] = text
    return out


def split_args(text, start):
    """The arguments of the call whose '(' is at start: (list, end)."""
    depth, args, cur, i, instr = 0, [], "", start, None
    while i < len(text):
        c = text[i]
        if instr:
            cur += c
            if c == "\\":
                cur += text[i + 1]
                i += 1
            elif c == instr:
                instr = None
        elif c in "\"'":
            instr = c
            cur += c
        elif c in "([{":
            depth += 1
            if depth > 1:
                cur += c
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(cur.strip())
                return args, i
            cur += c
        elif c == "," and depth == 1:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    return args, i


# a definition or a prototype: the parameters' names (a header may name
# one where the definition abbreviates it)
FUNC_DEF = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\(([^(){};]*)\)\s*(?:__attribute__\s*\(\(.*?\)\)\s*)?[{;]", re.S)
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')


def param_users(sources, pname):
    """{function: index of its parameter `const char *pname`}."""
    users = {}
    for text in sources.values():
        for m in FUNC_DEF.finditer(text):
            params = [p.strip() for p in m.group(2).split(",")]
            for k, p in enumerate(params):
                if re.fullmatch(r"const char \*%s" % pname, p):
                    users[m.group(1)] = k
    return users


# A name handed on from a table the readers below know: {level, event}
# rows, and the counters' F("stat", ...) rows.
TABLE_FIELD = {"event": "event", "key": "stat"}


def literals_passed(sources, headers, pname):
    """Every string literal passed to a parameter named pname, and the
    calls whose argument there is neither a literal nor handed on."""
    users = param_users(dict(sources, **headers), pname)
    found, unresolved = set(), []
    for fname, text in sources.items():
        for func, idx in users.items():
            for m in re.finditer(r"\b%s\s*\(" % func, text):
                before = text[:m.start()].rstrip()
                if re.search(r"(void|int|static|char|\*)$", before):
                    continue              # the definition or a prototype
                args, _ = split_args(text, m.end() - 1)
                if idx >= len(args):
                    continue
                lits = LITERAL.findall(args[idx])
                if lits:
                    found.update(lits)
                elif not re.fullmatch(r"NULL|%s|\w+\[[^\]]+\](\.|->)(%s|%s)" % (pname, pname, TABLE_FIELD[pname]),
                                      args[idx]):
                    unresolved.append("%s: %s(... %s ...)" % (fname, func, args[idx]))
    return found, unresolved


LEVELS = "debug|info|warn|error"


def source_events(srcdir):
    src = c_sources(srcdir)
    events, unresolved = literals_passed(src, c_sources(srcdir, (".h",)), "event")
    # tables of {level, event}, handed to a function as t.event
    for text in src.values():
        events.update(re.findall(r'\{\s*"(?:%s)"\s*,\s*"([a-z_]+)"\s*\}' % LEVELS, text))
    return events, unresolved


def source_keys(srcdir):
    src = c_sources(srcdir)
    keys, unresolved = literals_passed(src, c_sources(srcdir, (".h",)), "key")
    for text in src.values():     # the counters the stats line prints
        keys.update(re.findall(r'\bF\("([a-z_]+)",', text))
    return keys, unresolved


def source_longopts(srcdir):
    """{long name: file} of every struct option table."""
    out = {}
    for fname, text in c_sources(srcdir).items():
        for name in re.findall(r'\{\s*"([a-z0-9-]+)"\s*,\s*(?:no|required|optional)_argument', text):
            out.setdefault(name, fname)
    return out


def subcommands(srcdir):
    text = c_sources(srcdir).get("main.c", "")
    return sorted(set(re.findall(r'strcmp\(argv\[1\],\s*"([a-z][a-z-]*)"\)', text)))


# ---- the checks -----------------------------------------------------------

def cmd_options(help_path, man, section):
    want = help_options(help_path)
    have, problems = man_options(man, section)
    for long_, (short, value) in sorted(want.items()):
        if long_ not in have:
            problems.append("--%s is in --help, not in the man page's %s list" % (long_, section))
            continue
        mshort, mvalue = have[long_]
        if mshort != short:
            problems.append("--%s: short form '%s' in --help, '%s' in the man page" % (long_, short, mshort))
        if mvalue != value:
            problems.append("--%s: %s a value in --help, %s in the man page" % (
                long_, "takes" if value else "takes no", "takes" if mvalue else "takes no"))
    for long_ in sorted(set(have) - set(want)):
        problems.append("%s is in the man page's %s list, not in --help" % (
            long_ if long_.startswith("-") else "--" + long_, section))
    return problems


def cmd_synopsis(help_path, man, section):
    want = help_options(help_path)
    written = synopsis_blocks(man).get(section)
    if written is None:
        return ["SYNOPSIS has no line for %s" % section]
    problems = []
    shorts = {s: l for l, (s, _) in want.items() if s}
    for long_, (short, _) in sorted(want.items()):
        if "-" + long_ not in written and (not short or short not in written):
            problems.append("--%s (in --help) is not in the SYNOPSIS of %s" % (long_, section))
    for fl in sorted(written):
        if fl.startswith("-"):
            ok = fl[1:] in want
        else:
            ok = all(c in shorts for c in fl)    # Fl hV
        if not ok:
            problems.append("-%s in the SYNOPSIS of %s is not in --help" % (fl, section))
    return problems


def cmd_getopt(srcdir, man):
    written = set()
    for line in man_lines(man):
        written.update(f.strip(",").lstrip("-") for f in flags_in(line) if f.startswith("-"))
    return ["--%s (%s accepts it) is nowhere in the man page" % (n, f)
            for n, f in sorted(source_longopts(srcdir).items()) if n not in written]


def diag_items(man):
    """The event names DIAGNOSTICS lists (`.It Cm NAME ...`)."""
    names = set()
    for line in section_text(man, "DIAGNOSTICS"):
        m = re.match(r"\.It Cm ([a-z_]+)", line)
        if m:
            names.add(m.group(1))
    return names


def cmd_events(srcdir, man):
    events, unresolved = source_events(srcdir)
    problems = ["an event name the check cannot read: %s" % u for u in unresolved]
    if len(events) < 10:
        problems.append("only %d events found in the sources: the reader is broken" % len(events))
    listed = diag_items(man)
    problems += ["event=%s (logged by the code) is not in DIAGNOSTICS" % e for e in sorted(events - listed)]
    problems += ["event=%s is in DIAGNOSTICS, but nothing logs it" % e for e in sorted(listed - events)]
    return problems


def marked_words(line):
    """The words a line marks up as Cm, Li or Ar: `.Cm seq , id` gives seq
    and id; `.Li level= Ns ...` gives level. A macro name ends the run."""
    words, out, on = line.split(), set(), False
    for k, w in enumerate(words):
        w0 = w[1:] if k == 0 and w.startswith(".") else w
        if re.fullmatch(r"[A-Z][a-z]{1,2}", w0):
            on = w0 in ("Cm", "Li", "Ar")
            continue
        m = re.match(r"([a-z][a-z0-9_]*)(=|$)", w)
        if on and m:
            out.add(m.group(1))
    return out


def cmd_keys(srcdir, man):
    keys, unresolved = source_keys(srcdir)
    problems = ["a key the check cannot read: %s" % u for u in unresolved]
    marked = set()
    for line in section_text(man, "DIAGNOSTICS"):
        marked |= marked_words(line)
    if len(keys) < 10:
        problems.append("only %d keys found in the sources: the reader is broken" % len(keys))
    problems += ["key %s= (logged by the code) is not in DIAGNOSTICS" % k for k in sorted(keys - marked)]
    return problems


LINK = re.compile(r"\]\(([^)\s]+)\)")


def cmd_links(files):
    problems, n = [], 0
    for path in files:
        base = os.path.dirname(path)
        with open(path) as f:
            text = f.read()
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue                      # a URL, or a place in this file
            n += 1
            t = target.split("#")[0]
            if not os.path.exists(os.path.normpath(os.path.join(base, t))):
                problems.append("%s links to %s, which does not exist" % (path, target))
    if n == 0:
        problems.append("no relative link found in %s: the reader is broken" % " ".join(files))
    return problems


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "subcommands":
        print("\n".join(subcommands(args[0])))
        return 0
    if cmd == "list-events":
        print("\n".join(sorted(source_events(args[0])[0])))
        return 0
    if cmd == "list-keys":
        print("\n".join(sorted(source_keys(args[0])[0])))
        return 0
    problems = {
        "options": lambda: cmd_options(*args),
        "synopsis": lambda: cmd_synopsis(*args),
        "getopt": lambda: cmd_getopt(*args),
        "events": lambda: cmd_events(*args),
        "keys": lambda: cmd_keys(*args),
        "links": lambda: cmd_links(args),
    }[cmd]()
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
