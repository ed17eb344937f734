# Copyright: Health Butler SRE
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where the backups are: options shared by the backup and restore modules (spec: module_utils/common_options.py)."""

from __future__ import annotations


class ModuleDocFragment:
    """Options: backup_dir, wal_dir."""

    DOCUMENTATION = r"""
options:
  backup_dir:
    description:
      - The backup directory (C(hb_backup_dir)), holding C(dumps/), C(base/), C(incremental/) and C(files/).
    type: path
    required: true
  wal_dir:
    description:
      - The WAL archive directory (C(hb_wal_archive_dir)).
    type: path
"""
