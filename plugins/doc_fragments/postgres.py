# Copyright: Health Butler SRE
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The PostgreSQL server options shared by the modules that drive a cluster over its Unix socket."""

from __future__ import annotations


class ModuleDocFragment:
    """Options: pg_bindir, pg_os_user, pg_port (alias port), pg_socket_dir (alias socket_dir)."""

    DOCUMENTATION = r"""
options:
  pg_bindir:
    description:
      - Directory of the PostgreSQL binaries (C(psql), C(pg_ctl), C(pg_dump), C(pg_restore), ...),
        the site model's C(hb_pg_bindir).
    type: path
    required: true
  pg_os_user:
    description:
      - Operating-system user that owns the cluster; commands run as this user and connect by peer authentication
        over the socket (C(hb_pg_os_user)).
    type: str
    default: postgres
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
