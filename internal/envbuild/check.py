"""Reports which requirements the interpreter running it already meets.

stdin: JSON list of [name, spec] (spec like "", "==1.2", ">=1.0", "=1.2" (conda: 1.2.*)).
stdout: JSON {"python": "3.11.2", "packages": {name: {"installed": str|None, "ok": bool, "where": folder}}}.
"""
import json
import re
import sys
from importlib import metadata


def parse(v):
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.+-]", v))


def meets(installed, spec):
    if not spec:
        return True
    for part in spec.split(","):
        m = re.match(r"\s*(==|>=|<=|!=|~=|>|<|=)?\s*(\S+)", part)
        op, want = m.group(1) or "=", m.group(2)
        iv = parse(installed)
        if op == "=" or (op == "==" and want.endswith(".*")):
            prefix = parse(want.rstrip("*").rstrip("."))
            if iv[:len(prefix)] != prefix:
                return False
            continue
        wv = parse(want)
        try:
            ok = {"==": iv == wv, ">=": iv >= wv, "<=": iv <= wv, ">": iv > wv, "<": iv < wv,
                  "!=": iv != wv, "~=": iv >= wv and iv[:len(wv) - 1] == wv[:len(wv) - 1]}[op]
        except TypeError:
            ok = installed == want
        if not ok:
            return False
    return True


def main():
    reqs = json.load(sys.stdin)
    out = {"python": "%d.%d.%d" % sys.version_info[:3], "packages": {}}
    for name, spec in reqs:
        if name == "python":
            out["packages"][name] = {"installed": out["python"], "ok": meets(out["python"], spec)}
            continue
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            out["packages"][name] = {"installed": None, "ok": False}
            continue
        where = str(metadata.distribution(name).locate_file(""))
        out["packages"][name] = {"installed": version, "ok": meets(version, spec), "where": where}
    json.dump(out, sys.stdout)


main()
