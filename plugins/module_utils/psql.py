# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""psql as a JSON query engine.

Every query runs as ``psql -X -A -t -v ON_ERROR_STOP=1`` and must return one
JSON value (build it with ``json_agg``/``json_build_object``); rows are never
split out of text columns. The password reaches psql as ``PGPASSWORD``.
"""

from __future__ import annotations

import json
import os

from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import CommandError


class Conn:
    """Where and how to reach one PostgreSQL server."""

    def __init__(self, host=None, port=5432, user=None, password=None, dbname="postgres",
                 bindir=None, connect_timeout=5):
        self.host = host
        self.port = int(port)
        self.user = user
        self.password = password
        self.dbname = dbname
        self.bindir = bindir
        self.connect_timeout = connect_timeout

    def binary(self, name):
        if self.bindir and os.path.exists(os.path.join(self.bindir, name)):
            return os.path.join(self.bindir, name)
        return name

    def with_db(self, dbname):
        return Conn(self.host, self.port, self.user, self.password, dbname, self.bindir,
                    self.connect_timeout)

    def conn_args(self, dbname=True):
        """libpq options for any pg_* client (no password: that goes in env)."""
        args = []
        if self.host:
            args += ["-h", self.host]
        args += ["-p", str(self.port)]
        if self.user:
            args += ["-U", self.user]
        if dbname:
            args += ["-d", self.dbname]
        return args

    def env(self):
        env = {"PGCONNECT_TIMEOUT": str(self.connect_timeout), "PGAPPNAME": "healthbutler.recovery"}
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def psql_argv(conn):
    return [conn.binary("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"] + conn.conn_args()


def query_json(runner, conn, sql, timeout=60):
    """Run ``sql`` (which must yield one JSON value) and return it decoded.

    Raises ``CommandError`` when psql fails or the output is not JSON.
    """
    res = runner.run(psql_argv(conn), env=conn.env(), data=sql, timeout=timeout)
    if res.rc != 0:
        raise CommandError("psql failed (rc=%s): %s" % (res.rc, res.stderr.strip()[-1000:]),
                           psql_argv(conn), res.rc, res.stdout, res.stderr)
    text = res.stdout.strip()
    if not text:
        return None
    try:
        # json_agg spreads rows over several lines: the whole output is the value.
        return json.loads(text)
    except ValueError as exc:
        raise CommandError("psql output is not JSON: %r" % text[:200], psql_argv(conn), res.rc,
                           res.stdout, res.stderr) from exc


def execute(runner, conn, sql, timeout=None):
    """Run statements with no result wanted; raise ``CommandError`` on failure."""
    res = runner.run(psql_argv(conn), env=conn.env(), data=sql, timeout=timeout)
    if res.rc != 0:
        raise CommandError("psql failed (rc=%s): %s" % (res.rc, res.stderr.strip()[-1000:]),
                           psql_argv(conn), res.rc, res.stdout, res.stderr)
    return res


def quote_ident(name):
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value):
    return "'" + str(value).replace("'", "''") + "'"
