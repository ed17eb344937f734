"""diagnose -e sections=app_tools: real prisma validate on the sandbox app's schema, npm audit or why not."""

from __future__ import annotations

import json
import os

from harness import run_playbook


def app_tools(run_dir):
    with open(os.path.join(run_dir, "diagnosis.json"), encoding="utf-8") as fh:
        tools = json.load(fh)["facts"]["localhost"]["app_tools"]
    with open(os.path.join(run_dir, "diagnosis.md"), encoding="utf-8") as fh:
        return tools, fh.read()


def test_app_tools_validate_the_schema_and_name_its_errors(healthy, tmp_path):
    schema = os.path.join(healthy["hb_app_dir"], "prisma", "schema.prisma")
    with open(schema, encoding="utf-8") as fh:
        good = fh.read()

    run = run_playbook("diagnose.yml", {"sections": "app_tools", "diagnose_run_dir": str(tmp_path / "good")})
    assert run.rc == 0, run.stdout[-3000:]
    tools, report = app_tools(str(tmp_path / "good"))
    assert tools["prisma"]["available"] and tools["prisma"]["valid"] is True, tools["prisma"]
    assert "prisma validate (%s): valid" % schema in report
    audit = tools["npm_audit"]
    if audit["available"]:  # a registry that answers audits: counts by severity
        assert set(audit["counts"]) == {"critical", "high", "moderate", "low", "info"}
        assert "- npm audit: %d vulnerabilities" % audit["total"] in report
    else:  # this machine's registry refuses the audit endpoint: said so, with the registry's answer
        assert audit["reason"].startswith("unavailable, because the registry gave no audit report")
        assert "- npm audit: unavailable, because" in report

    try:
        with open(schema, "w", encoding="utf-8") as fh:
            fh.write(good.replace("user      User     @relation", "user      Usr      @relation"))
        run = run_playbook("diagnose.yml", {"sections": "app_tools", "diagnose_run_dir": str(tmp_path / "bad")})
        assert run.rc == 0, run.stdout[-3000:]
        tools, report = app_tools(str(tmp_path / "bad"))
    finally:
        with open(schema, "w", encoding="utf-8") as fh:
            fh.write(good)
    prisma = tools["prisma"]
    assert prisma["available"] and prisma["valid"] is False
    assert any('Type "Usr" is neither a built-in type' in e["message"] for e in prisma["errors"]), prisma
    assert any((e["at"] or "").endswith("schema.prisma:23") for e in prisma["errors"]), prisma
    assert 'error(s): Type "Usr" is neither a built-in type' in report
    for secret in healthy.secrets():
        assert secret not in report and secret not in json.dumps(tools)
