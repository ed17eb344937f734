"""diagnose_tools: prisma validate and npm audit, parsed; unavailable with a reason."""

import json

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_tools as dt
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandRunner, Result


class FakeRunner(CommandRunner):
    def __init__(self, rc=0, stdout="", stderr=""):
        self.calls = []
        self.answer = Result(rc, stdout, stderr)

    def _run(self, argv, env, data, cwd, timeout):
        self.calls.append((argv, env, cwd, timeout))
        return self.answer


PRISMA_ERR = """Error: Prisma schema validation - (validate wasm)
Error code: P1012
\x1b[1;91merror\x1b[0m: \x1b[1mType "Usr" is neither a built-in type, nor refers to another model.\x1b[0m
  \x1b[1;94m-->\x1b[0m  \x1b[4mprisma/schema.prisma:9\x1b[0m
   |
 9 |   user Usr @relation(fields: [userId], references: [id])

Validation Error Count: 1
"""


def app(tmp_path, schema=True, lock=True):
    if schema:
        (tmp_path / "prisma").mkdir(exist_ok=True)
        (tmp_path / "prisma" / "schema.prisma").write_text("datasource db {}\n")
    if lock:
        (tmp_path / "package-lock.json").write_text("{}")
    return str(tmp_path)


def test_prisma_errors_are_named(tmp_path):
    runner = FakeRunner(rc=1, stderr=PRISMA_ERR)
    out = dt.prisma_validate(runner, "/tools/prisma", app(tmp_path), timeout=30)
    assert out["available"] and out["valid"] is False
    assert out["errors"] == [{"message": 'Type "Usr" is neither a built-in type, nor refers to another model.',
                              "at": "prisma/schema.prisma:9"}]
    argv, env, cwd, timeout = runner.calls[0]
    assert argv[:2] == ["/tools/prisma", "validate"] and timeout == 30 and cwd == str(tmp_path)
    assert env["PRISMA_QUERY_ENGINE_LIBRARY"] == "/tools/prisma"


def test_prisma_valid_and_unavailable(tmp_path):
    assert dt.prisma_validate(FakeRunner(stdout="The schema is valid"), "prisma", app(tmp_path))["valid"] is True
    assert dt.prisma_validate(FakeRunner(), None, str(tmp_path))["reason"] == \
        "unavailable, because prisma is not installed on this host"
    assert dt.prisma_validate(FakeRunner(), "prisma", str(tmp_path / "x"))["reason"] == \
        "unavailable, because the app has no prisma/schema.prisma"
    assert "within 5 s" in dt.prisma_validate(FakeRunner(rc=124), "prisma", app(tmp_path), timeout=5)["reason"]


AUDIT = {
    "auditReportVersion": 2,
    "vulnerabilities": {
        "lodash": {"name": "lodash", "severity": "high", "via": [
            {"title": "Prototype Pollution in lodash", "url": "https://github.com/advisories/GHSA-x",
             "severity": "high"}]},
        "minimist": {"name": "minimist", "severity": "critical", "via": [
            {"title": "Prototype Pollution in minimist", "url": "https://github.com/advisories/GHSA-y",
             "severity": "critical"}]},
        "mkdirp": {"name": "mkdirp", "severity": "critical", "via": ["minimist"]},
    },
    "metadata": {"vulnerabilities": {"info": 0, "low": 0, "moderate": 0, "high": 1, "critical": 2, "total": 3}},
}


def test_audit_counts_by_severity_and_top_advisories(tmp_path):
    out = dt.npm_audit(FakeRunner(rc=1, stdout=json.dumps(AUDIT)), "npm", app(tmp_path))
    assert out["available"] and out["total"] == 3
    assert out["counts"] == {"critical": 2, "high": 1, "moderate": 0, "low": 0, "info": 0}
    assert [a["name"] for a in out["top"]] == ["minimist", "lodash"]
    assert out["top"][0]["title"] == "Prototype Pollution in minimist"


def test_audit_without_the_registry_is_unavailable_with_the_reason(tmp_path):
    refused = json.dumps({"message": "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/"
                                     "advisories/bulk", "statusCode": 405, "error": {"summary": "", "detail": ""}})
    out = dt.npm_audit(FakeRunner(rc=1, stdout=refused), "npm", app(tmp_path))
    assert out == {"available": False, "reason": "unavailable, because the registry gave no audit report: 405 "
                   "Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk"}
    offline = json.dumps({"error": {"code": "ENOTFOUND", "summary": "request to https://registry.npmjs.org failed"}})
    assert "request to https://registry.npmjs.org failed" in dt.npm_audit(
        FakeRunner(rc=1, stdout=offline), "npm", app(tmp_path))["reason"]
    assert dt.npm_audit(FakeRunner(), None, app(tmp_path))["reason"] == \
        "unavailable, because npm is not installed on this host"
    (tmp_path / "bare").mkdir()
    assert dt.npm_audit(FakeRunner(), "npm", app(tmp_path / "bare", lock=False))["reason"] == \
        "unavailable, because the app has no package-lock.json"


def test_a_host_with_only_app_tools_classifies_as_healthy():
    from ansible_collections.healthbutler.recovery.plugins.module_utils.diagnose_classify import classify
    facts = {"localhost": {"hostname": "vm", "sections": ["app_tools"], "app_tools": {
        "prisma": {"available": True, "valid": True, "errors": []}, "npm_audit": {"available": False, "reason": "x"}}}}
    assert classify(facts)["healthy"] is True
