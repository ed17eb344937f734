# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Read ``node --prof-process`` output: the JavaScript functions by ticks, the app's own ones marked.

A V8 tick log (``node --prof``) turned into text by ``node --prof-process`` has a ``[JavaScript]`` section of
``ticks  total  nonlib  name`` rows, the name being ``JS: <marker><function> <file>:<line>:<column>``
(``*`` optimised, ``~`` interpreted, ``^`` baseline). A function is the app's when its file lies under the
app directory and outside ``node_modules``.
"""

from __future__ import annotations

import re

_HEAD_RE = re.compile(r"^Statistical profiling result from .*\((\d+) ticks, (\d+) unaccounted")
_ROW_RE = re.compile(r"^\s*(\d+)\s+([\d.]+)%\s+([\d.]+)%\s+(.*)$")
_JS_RE = re.compile(r"^(?:JS: )?([*~^+]?)(\S*)\s+(\S+?):(\d+):(\d+)$")


def parse(text, app_dir, top=10):
    """``{"ticks", "unaccounted", "functions": [...], "top": [...], "app_functions": [...]}`` from the text."""
    head = next((m for m in map(_HEAD_RE.match, text.splitlines()) if m), None)
    functions, section = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]:"):
            section = stripped[1:-2]
            continue
        if section != "JavaScript":
            continue
        row = _ROW_RE.match(line)
        if not row:
            continue
        ticks, total, _nonlib, name = row.groups()
        js = _JS_RE.match(name.strip())
        func, path, lineno = (js.group(2) or "(anonymous)", js.group(3), int(js.group(4))) if js else (name, "", 0)
        path = path[len("file://"):] if path.startswith("file://") else path
        functions.append({"ticks": int(ticks), "share": float(total), "function": func, "file": path,
                          "line": lineno, "app": is_app_file(path, app_dir)})
    functions.sort(key=lambda f: -f["ticks"])
    return {"ticks": int(head.group(1)) if head else sum(f["ticks"] for f in functions),
            "unaccounted": int(head.group(2)) if head else 0, "functions": functions,
            "top": functions[:top], "app_functions": [f for f in functions if f["app"]][:top]}


def is_app_file(path, app_dir):
    root = app_dir.rstrip("/") + "/"
    return bool(path) and path.startswith(root) and "/node_modules/" not in path[len(root) - 1:]


def markdown(summary, meta):
    """The profile report: what was profiled, then the top functions and the app's own ones."""
    lines = ["# CPU profile of %s" % meta["app"], "",
             "- host: %s" % meta["host"],
             "- profiled: %s s, %s" % (meta["seconds"], "load: GET %s" % meta["url"] if meta.get("url")
                                       else "under the load that was there"),
             "- ticks: %d (%d unaccounted)" % (summary["ticks"], summary["unaccounted"]),
             "- V8 log: %s" % meta["log"], ""]
    for title, rows in (("Top JavaScript functions by ticks", summary["top"]),
                        ("The app's own functions by ticks", summary["app_functions"])):
        lines += ["## " + title, "", "| ticks | share | function | where |", "|---:|---:|---|---|"]
        lines += ["| %d | %.1f %% | %s | %s:%d |" % (f["ticks"], f["share"], f["function"], f["file"], f["line"])
                  for f in rows] or ["| 0 | | (none sampled) | |"]
        lines.append("")
    return "\n".join(lines)
