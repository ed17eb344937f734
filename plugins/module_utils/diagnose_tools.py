# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The runbook's app diagnosis tools: ``npx prisma validate`` and ``npm audit``, each with a timeout.

Each returns ``{available, ...}``; when the tool or the network is missing, ``available`` is false
and ``reason`` says why ("unavailable, because ..."), never an exception.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import redact_text

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SEVERITIES = ("critical", "high", "moderate", "low", "info")


def unavailable(reason, **extra):
    return dict(extra, available=False, reason="unavailable, because " + reason)


def prisma_validate(runner, prisma_bin, app_dir, schema="prisma/schema.prisma", timeout=60):
    """{available, valid, errors [{message, at}], schema} from ``prisma validate``."""
    path = os.path.join(app_dir, schema)
    if not prisma_bin:
        return unavailable("prisma is not installed on this host", schema=path)
    if not os.path.exists(path):
        return unavailable("the app has no %s" % schema, schema=path)
    # validate runs on the schema's WebAssembly parser; pointing the engine variables at an existing file keeps
    # the CLI from downloading engines it does not need here (no network needed).
    env = {"PRISMA_QUERY_ENGINE_LIBRARY": prisma_bin, "PRISMA_SCHEMA_ENGINE_BINARY": prisma_bin,
           "PRISMA_HIDE_UPDATE_MESSAGE": "1", "CHECKPOINT_DISABLE": "1", "NO_COLOR": "1"}
    res = runner.run([prisma_bin, "validate", "--schema", path], env=env, cwd=app_dir, timeout=timeout)
    if res.rc == 124:
        return unavailable("prisma validate did not finish within %s s" % timeout, schema=path)
    return dict(parse_prisma(res.rc, res.stdout + "\n" + res.stderr), available=True, schema=path)


def parse_prisma(rc, text):
    text = ANSI.sub("", text)
    if rc == 0:
        return {"valid": True, "errors": []}
    errors, current = [], None
    for line in text.splitlines():
        m = re.match(r"^error: (.*)$", line.strip())
        if m:
            current = {"message": redact_text(m.group(1).strip())[:300], "at": None}
            errors.append(current)
            continue
        m = re.match(r"^-->\s+(\S+)", line.strip())
        if m and current is not None and current["at"] is None:
            current["at"] = m.group(1)
    if not errors:
        last = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("Error")]
        errors = [{"message": redact_text(last[0] if last else "prisma validate failed (rc=%s)" % rc)[:300],
                   "at": None}]
    return {"valid": False, "errors": errors}


def npm_audit(runner, npm_bin, app_dir, timeout=60, top=5):
    """{available, counts {severity: n}, total, top [{name, severity, title, url}]} from ``npm audit --json``."""
    if not npm_bin:
        return unavailable("npm is not installed on this host")
    if not os.path.exists(os.path.join(app_dir, "package-lock.json")):
        return unavailable("the app has no package-lock.json")
    res = runner.run([npm_bin, "audit", "--json", "--package-lock-only"], cwd=app_dir, timeout=timeout)
    if res.rc == 124:
        return unavailable("npm audit did not finish within %s s (network?)" % timeout)
    return parse_audit(res.stdout, top)


def parse_audit(stdout, top=5):
    try:
        doc = json.loads(stdout[stdout.index("{"):]) if "{" in stdout else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return unavailable("npm audit printed no JSON report")
    if "metadata" not in doc:
        err = doc.get("error") if isinstance(doc.get("error"), dict) else {}
        said = doc.get("message") or err.get("summary") or err.get("code") or "no report"
        return unavailable("the registry gave no audit report: %s" % redact_text(str(said))[:300])
    counts = {s: int((doc["metadata"].get("vulnerabilities") or {}).get(s, 0)) for s in SEVERITIES}
    advisories = []
    for name, vuln in sorted((doc.get("vulnerabilities") or {}).items()):
        for via in vuln.get("via") or []:
            if isinstance(via, dict):
                advisories.append({"name": name, "severity": via.get("severity") or vuln.get("severity"),
                                   "title": via.get("title"), "url": via.get("url")})
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    advisories.sort(key=lambda a: (rank.get(a["severity"], 9), a["name"]))
    return {"available": True, "counts": counts, "total": sum(counts.values()), "top": advisories[:top]}


def collect(runner, app_dir, prisma_bin=None, npm_bin=None, timeout=60):
    return {"prisma": prisma_validate(runner, prisma_bin, app_dir, timeout=timeout),
            "npm_audit": npm_audit(runner, npm_bin, app_dir, timeout=timeout)}
