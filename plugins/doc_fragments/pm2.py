# Copyright: Health Butler SRE
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The PM2 options shared by the modules that talk to the app's PM2 daemon (spec: module_utils/common_options.py)."""

from __future__ import annotations


class ModuleDocFragment:
    """Options: pm2_bin, pm2_home."""

    DOCUMENTATION = r"""
options:
  pm2_bin:
    description:
      - The C(pm2) executable, a name looked up on C(PATH) or a path (C(hb_pm2_bin)).
    type: path
    default: pm2
  pm2_home:
    description:
      - C(PM2_HOME) of the PM2 daemon that runs the app (C(hb_pm2_home)).
    type: path
"""
