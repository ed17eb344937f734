# Copyright: Health Butler SRE
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The PostgreSQL options shared by the modules, one name each (argument_spec: module_utils/common_options.py)."""

from __future__ import annotations


class ModuleDocFragment:
    """DOCUMENTATION: the server driven over its Unix socket (pg_bindir, pg_os_user, pg_port, pg_socket_dir).
    CLIENT (``healthbutler.recovery.postgres.client``): the client binaries and the port (pg_bindir, pg_port)."""

    DOCUMENTATION = r"""
options:
  pg_bindir:
    description:
      - Directory of the PostgreSQL binaries (C(psql), C(pg_ctl), C(pg_dump), C(pg_restore), ...),
        the site model's C(hb_pg_bindir).
    type: path
    required: true
    aliases: [bindir]
  pg_os_user:
    description:
      - Operating-system user that owns the cluster; commands run as this user and connect by peer authentication
        over the socket (C(hb_pg_os_user)).
    type: str
    default: postgres
    aliases: [os_user]
  pg_port:
    description:
      - Port of the server (C(hb_pg_port)).
    type: int
    default: 5432
    aliases: [port]
  pg_socket_dir:
    description:
      - Unix socket directory of the server (C(hb_pg_socket_dir)).
    type: path
    required: true
    aliases: [socket_dir]
"""

    CLIENT = r"""
options:
  pg_bindir:
    description:
      - Directory of the PostgreSQL client binaries (C(psql), C(pg_dump), ...), the site model's C(hb_pg_bindir).
      - When omitted, they are looked up on C(PATH).
    type: path
    aliases: [bindir]
  pg_port:
    description:
      - Port of the server (C(hb_pg_port)).
    type: int
    default: 5432
    aliases: [port]
"""
