"""psql as a JSON engine: argv shape, secrets in env only, errors carried."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils.psql import (
    Conn,
    execute,
    psql_argv,
    query_json,
    quote_ident,
    quote_literal,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError


def test_argv_has_the_house_flags_and_no_password():
    conn = Conn(host="/run/pg", port=5433, user="mon", password="s3cret", dbname="health_butler")
    argv = psql_argv(conn)
    assert argv[:7] == ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
    assert argv[7:] == ["-h", "/run/pg", "-p", "5433", "-U", "mon", "-d", "health_butler"]
    assert "s3cret" not in " ".join(argv)
    assert conn.env()["PGPASSWORD"] == "s3cret"


def test_query_json_sends_sql_on_stdin_and_decodes(fake_runner):
    fake_runner.add(r"psql", stdout='{"n": 3}\n')
    conn = Conn(port=5432, password="pw")
    assert query_json(fake_runner, conn, "SELECT json_build_object('n', 3)") == {"n": 3}
    call = fake_runner.calls[0]
    assert call["data"].startswith("SELECT json_build_object")
    assert call["env"]["PGPASSWORD"] == "pw"


@pytest.mark.parametrize("rc,stdout,stderr,match", [
    (2, "", "psql: error: connection refused", "connection refused"),
    (0, "not json", "", "not JSON"),
])
def test_query_json_raises_command_error(fake_runner, rc, stdout, stderr, match):
    fake_runner.add(r"psql", rc=rc, stdout=stdout, stderr=stderr)
    with pytest.raises(CommandError, match=match) as err:
        query_json(fake_runner, Conn(), "SELECT 1")
    assert err.value.argv[0] == "psql"


def test_query_json_returns_none_for_empty_output(fake_runner):
    fake_runner.add(r"psql", stdout="\n")
    assert query_json(fake_runner, Conn(), "SELECT NULL") is None


def test_execute_raises_on_failure(fake_runner):
    fake_runner.add(r"psql", rc=3, stderr="ERROR:  relation does not exist")
    with pytest.raises(CommandError, match="relation does not exist"):
        execute(fake_runner, Conn(), "SELECT * FROM nope")


def test_binary_prefers_bindir(tmp_path):
    (tmp_path / "psql").write_text("")
    assert Conn(bindir=str(tmp_path)).binary("psql") == str(tmp_path / "psql")
    assert Conn(bindir="/nonexistent").binary("psql") == "psql"


def test_quoting():
    assert quote_ident('we"ird') == '"we""ird"'
    assert quote_literal("it's") == "'it''s'"


def test_query_json_reads_json_agg_spread_over_lines(fake_runner):
    fake_runner.add(r"psql", stdout='[{"id":1}, \n {"id":2}]\n')
    assert query_json(fake_runner, Conn(), "SELECT json_agg(t) FROM t") == [{"id": 1}, {"id": 2}]
