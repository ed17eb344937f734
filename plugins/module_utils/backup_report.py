# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Render a backup verification report: JSON, JUnit XML, Markdown, Prometheus textfile."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET

from ansible_collections.healthbutler.recovery.plugins.module_utils import backup_catalog as bc
from ansible_collections.healthbutler.recovery.plugins.module_utils.backup_checks import STATUS_VALUE


def junit(report):
    checks = report["checks"]
    suite = ET.Element("testsuite", name="backup_verify", tests=str(len(checks)),
                       failures=str(sum(c["status"] == "FAILED" for c in checks)), errors="0",
                       skipped="0", timestamp=report["generated_at"])
    for item in checks:
        case = ET.SubElement(suite, "testcase", classname="healthbutler.backup_verify", name=item["name"])
        if item["status"] == "FAILED":
            ET.SubElement(case, "failure", message=item["evidence"][:500], type="FAILED").text = item["evidence"]
        else:
            ET.SubElement(case, "system-out").text = "%s: %s" % (item["status"], item["evidence"])
    return ET.tostring(suite, encoding="unicode") + "\n"


def markdown(report):
    summary = report["summary"]
    window = report["window"]
    lines = ["# Backup verification %s" % report["generated_at"], "",
             "**Result: %s** — %d OK, %d WARNING, %d FAILED" % (
                 summary["status"], summary["counts"]["OK"], summary["counts"]["WARNING"],
                 summary["counts"]["FAILED"]), ""]
    if window.get("recoverable"):
        lines += ["Recoverable from **%s** (base backup %s) to **%s** (segment %s)." % (
            window["earliest"]["time"], window["earliest"]["backup"], window["latest"]["time"],
            window["latest"]["segment"]), ""]
    else:
        lines += ["**Not recoverable:** %s" % window.get("reason"), ""]
    lines += ["| check | status | evidence |", "|---|---|---|"]
    for item in report["checks"]:
        lines.append("| %s | %s | %s |" % (item["name"], item["status"],
                                           item["evidence"].replace("|", "\\|").replace("\n", " ")))
    return "\n".join(lines) + "\n"


def _label(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def previous_success(path):
    """The last-success timestamp kept in an earlier textfile, or None."""
    try:
        with open(path, encoding="utf-8") as fh:
            match = re.search(r"^hb_backup_verify_last_success_timestamp_seconds (\S+)$", fh.read(), re.M)
    except OSError:
        return None
    return float(match.group(1)) if match else None


def prometheus(report, last_success=None):
    ok = report["summary"]["status"] != "FAILED"
    success = report["generated_at_ts"] if ok else last_success
    out = ["# HELP hb_backup_verify_last_run_timestamp_seconds Time of the last verification run.",
           "# TYPE hb_backup_verify_last_run_timestamp_seconds gauge",
           "hb_backup_verify_last_run_timestamp_seconds %.0f" % report["generated_at_ts"],
           "# HELP hb_backup_verify_last_success_timestamp_seconds Time of the last run without a FAILED check.",
           "# TYPE hb_backup_verify_last_success_timestamp_seconds gauge",
           "hb_backup_verify_last_success_timestamp_seconds %.0f" % (success or 0),
           "# HELP hb_backup_newest_age_seconds Age of the newest backup per kind.",
           "# TYPE hb_backup_newest_age_seconds gauge"]
    for kind, item in sorted(report["newest"].items()):
        out.append('hb_backup_newest_age_seconds{kind="%s"} %.0f' % (_label(kind), item["age_seconds"]))
    window = report["window"]
    until = bc.epoch(window["latest"]["time"]) if window.get("recoverable") else 0
    out += ["# HELP hb_backup_recoverable_until_timestamp_seconds End of the recovery window (0: not recoverable).",
            "# TYPE hb_backup_recoverable_until_timestamp_seconds gauge",
            "hb_backup_recoverable_until_timestamp_seconds %.0f" % (until or 0),
            "# HELP hb_backup_policy_violations Number of backup policy violations.",
            "# TYPE hb_backup_policy_violations gauge",
            "hb_backup_policy_violations %d" % len(report["violations"]),
            "# HELP hb_backup_verify_check_status Per check: 0 OK, 1 WARNING, 2 FAILED.",
            "# TYPE hb_backup_verify_check_status gauge"]
    for item in report["checks"]:
        out.append('hb_backup_verify_check_status{check="%s"} %d' % (_label(item["name"]),
                                                                     STATUS_VALUE[item["status"]]))
    return "\n".join(out) + "\n"


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_all(report, report_dir, textfile=None):
    """Write report.json, junit.xml, summary.md and backup_verify.prom; return their paths."""
    os.makedirs(report_dir, exist_ok=True)
    prom_path = textfile or os.path.join(report_dir, "backup_verify.prom")
    paths = {"json": os.path.join(report_dir, "report.json"), "junit": os.path.join(report_dir, "junit.xml"),
             "markdown": os.path.join(report_dir, "summary.md"), "prometheus": prom_path}
    write_atomic(paths["json"], json.dumps(report, indent=1, sort_keys=True, default=str) + "\n")
    write_atomic(paths["junit"], junit(report))
    write_atomic(paths["markdown"], markdown(report))
    write_atomic(prom_path, prometheus(report, previous_success(prom_path)))
    return paths
