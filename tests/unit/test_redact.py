"""redact: secret keys, URL credentials, .env text, log lines, SQL; the redact_secrets filter."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.filter.redact_secrets import redact_secrets
from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import (
    MASK,
    env_key_report,
    is_secret_key,
    redact_env_text,
    redact_mapping,
    redact_text,
)

ENV = """# production settings
NODE_ENV=production
PORT=3000
DATABASE_URL=postgresql://health_butler:s3cretDBpw@db.internal:5432/health_butler
REDIS_URL=redis://:r3disPW@cache:6379/0
JWT_SECRET=jwtjwtjwtjwt
SESSION_SECRET="quoted session secret"
SMS_API_KEY=smskey12345
GITHUB_TOKEN=
export STRIPE_PRIVATE_KEY=sk_live_abc
"""
SECRETS = ["s3cretDBpw", "r3disPW", "jwtjwtjwtjwt", "quoted session secret", "smskey12345", "sk_live_abc"]


@pytest.mark.parametrize("key,secret", [
    ("JWT_SECRET", True), ("db_password", True), ("PGPASSWORD", True), ("GITHUB_TOKEN", True),
    ("SMS_API_KEY", True), ("apiKey", True), ("REDISCLI_AUTH", True), ("client_credentials", True),
    ("PRIVATE_PEM", True), ("key", False),
    ("evicted_keys", False), ("keyspace_hits", False), ("NODE_ENV", False), ("PORT", False),
    ("author", False), ("max_connections", False), ("DATABASE_URL", False),
])
def test_secret_key_names(key, secret):
    assert is_secret_key(key) is secret


def test_env_text_drops_comments_and_masks_every_secret():
    out = redact_env_text(ENV)
    assert "# production" not in out
    assert "NODE_ENV=production" in out and "PORT=3000" in out
    assert "DATABASE_URL=postgresql://health_butler:%s@db.internal:5432/health_butler" % MASK in out
    assert "REDIS_URL=redis://:%s@cache:6379/0" % MASK in out
    assert "GITHUB_TOKEN=\n" in out  # empty stays visibly empty
    for secret in SECRETS:
        assert secret not in out


def test_env_key_report_says_set_or_not_and_masks():
    rows = {r["key"]: r for r in env_key_report(ENV)}
    assert rows["JWT_SECRET"] == {"key": "JWT_SECRET", "set": True, "value": MASK}
    assert rows["GITHUB_TOKEN"] == {"key": "GITHUB_TOKEN", "set": False, "value": ""}
    assert rows["PORT"]["value"] == "3000"
    assert rows["STRIPE_PRIVATE_KEY"]["value"] == MASK
    assert not any(s in str(rows) for s in SECRETS)


@pytest.mark.parametrize("line,secret", [
    ("Error: connect ECONNREFUSED postgresql://app:hunter2xx@127.0.0.1:5432/hb", "hunter2xx"),
    ("config {\"password\": \"pa55word!\", \"user\": \"app\"}", "pa55word!"),
    ("JWT_SECRET=abcdefgh next", "abcdefgh"),
    ("api_key: 'k-123456' rest", "k-123456"),
    ("CREATE ROLE app LOGIN PASSWORD 'it''s-secret' IN ROLE x", "it''s-secret"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
    ("token=abc123def&user=x", "abc123def"),
])
def test_text_masks_secrets_in_log_lines(line, secret):
    out = redact_text(line)
    assert secret not in out
    assert MASK in out


def test_text_keeps_harmless_lines_and_masks_known_values():
    assert redact_text("evicted_keys:0 used_memory:1024") == "evicted_keys:0 used_memory:1024"
    assert redact_text("GET /health 200") == "GET /health 200"
    assert redact_text("leaked literal zzSecretValue99 here", ["zzSecretValue99"]) == "leaked literal %s here" % MASK


def test_mapping_is_recursive_and_keeps_shape():
    data = {"DATABASE_URL": "postgresql://u:pw12345@h/db", "nested": [{"SMS_API_KEY": "abc"}, {"PORT": 3000}],
            "password": None, "flags": {"auth": True}, "log": "JWT_SECRET=xyz123"}
    out = redact_mapping(data)
    assert out["DATABASE_URL"] == "postgresql://u:%s@h/db" % MASK
    assert out["nested"] == [{"SMS_API_KEY": MASK}, {"PORT": 3000}]
    assert out["password"] is None and out["flags"] == {"auth": True}
    assert "xyz123" not in out["log"]
    assert data["nested"][0]["SMS_API_KEY"] == "abc"  # input untouched


def test_filter_formats():
    assert redact_secrets({"JWT_SECRET": "x"}) == {"JWT_SECRET": MASK}
    assert "jwtjwtjwtjwt" not in redact_secrets(ENV, format="env")
    keys = redact_secrets(ENV, format="keys")
    assert [r["key"] for r in keys][:3] == ["NODE_ENV", "PORT", "DATABASE_URL"]
    assert redact_secrets("user=bob pw inline: qwerty77", values=["qwerty77"]) == "user=bob pw inline: %s" % MASK
    with pytest.raises(Exception, match="format must be one of"):
        redact_secrets("x", format="yaml")
