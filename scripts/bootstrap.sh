#!/usr/bin/env bash
# Install what this checkout needs, idempotently: Debian packages (bindep.txt),
# pm2 in a project-local prefix (.tools/), and the Python venv (.venv/).
# Re-running it is cheap: each step checks first and only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PM2_VERSION=7.0.4
PYTHON=${PYTHON:-python3}

log() { printf 'bootstrap: %s\n' "$*"; }

# Debian packages: the names in bindep.txt that dpkg does not report installed.
missing=()
node_ok=0; command -v node >/dev/null && command -v npm >/dev/null && node_ok=1
while read -r pkg _; do
  case "$pkg" in ''|'#'*) continue ;; esac
  if [[ $node_ok == 1 && ( $pkg == nodejs || $pkg == npm ) ]]; then continue; fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done < bindep.txt
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  if [[ $(id -u) != 0 ]]; then echo "bootstrap: need root to install ${missing[*]}" >&2; exit 1; fi
  # policy-rc.d keeps apt from starting the services: the sandbox starts its own.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq || log "apt-get update failed; trying the install with the current lists"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# pm2, pinned, in .tools/ (never global).
if [[ "$(cat .tools/.pm2-version 2>/dev/null)" != "$PM2_VERSION" || ! -x .tools/node_modules/.bin/pm2 ]]; then
  log "installing pm2@$PM2_VERSION into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION" >/dev/null
  echo "$PM2_VERSION" > .tools/.pm2-version
else
  log "pm2 $PM2_VERSION present"
fi

# prisma, pinned, in .tools/ too: `diagnose -e sections=app_tools` validates the app's schema with it.
PRISMA_VERSION=5.22.0
if [[ "$(cat .tools/.prisma-version 2>/dev/null)" != "$PRISMA_VERSION" || ! -x .tools/node_modules/.bin/prisma ]]; then
  log "installing prisma@$PRISMA_VERSION into .tools/"
  npm install --prefix .tools --no-audit --no-fund --loglevel=error "pm2@$PM2_VERSION" "prisma@$PRISMA_VERSION" >/dev/null
  echo "$PRISMA_VERSION" > .tools/.prisma-version
else
  log "prisma $PRISMA_VERSION present"
fi

# Python venv; reinstall only when the requirement files changed.
stamp="$VENV/.requirements.sha256"
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [[ ! -x $VENV/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  log "installing the Python venv in $VENV"
  [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
else
  log "venv up to date"
fi

# The collection resolves from this checkout as healthbutler.recovery, without a copy.
mkdir -p .collections/ansible_collections/healthbutler
ln -sfn "$ROOT" .collections/ansible_collections/healthbutler/recovery
log "done"
