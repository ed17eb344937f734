#!/usr/bin/env bash
# Namespace plumbing of the local staging fleet: one network namespace, one private mount
# namespace and one sshd per host, joined to the controller (root namespace) by a bridge.
#
# usage: fleet-net.sh up|down|status
# environment:
#   FLEET_STATE   state directory (per-host directories live in $FLEET_STATE/hosts/<name>)
#   FLEET_PREFIX  prefix of namespace, bridge and veth names (short: names are at most 15 chars)
#   FLEET_NET     first three octets of the fleet's /24, e.g. 10.212.12 (the bridge is .1)
#   FLEET_HOSTS   space-separated <name>=<last octet>[:<role>,...] e.g. "staging-app-1=11:app"
#   FLEET_USER    the SSH user (created if missing, home /home/<user>, private per host)
#   FLEET_TOOLS   directory copied to /opt/healthbutler on app hosts (pm2), read as root only
#   FLEET_PUBKEY  the deploy user's authorized public key (file)
# Only addresses of $FLEET_NET.0/24 are configured; no default route leaves a namespace.
set -euo pipefail
cmd=${1:?up|down|status}
: "${FLEET_STATE:?}" "${FLEET_PREFIX:?}" "${FLEET_NET:?}" "${FLEET_HOSTS:?}" "${FLEET_USER:=deploy}"
bridge=${FLEET_PREFIX}-br
home=/home/$FLEET_USER
# mount point on every host -> per-host source directory, owner, mode
MOUNTS=(
  "/app|app|$FLEET_USER:$FLEET_USER|0755"
  "/var/lib/postgresql|var-lib-postgresql|postgres:postgres|0755"
  "/var/log/postgresql|var-log-postgresql|postgres:postgres|0755"
  "/run/postgresql|run-postgresql|postgres:postgres|2775"
  # The machine's Debian cluster config (pg_lsclusters) is not the fleet's: the db host's cluster is a
  # pg_ctl -D one with its settings in its data directory, so no host sees /etc/postgresql of the machine.
  "/etc/postgresql|etc-postgresql|postgres:postgres|0755"
  "/var/backups|var-backups|root:root|0755"
  "/var/lib/redis|var-lib-redis|redis:redis|0750"
  "/var/lib/healthbutler-recovery|run-records|root:root|0755"
  "$home|home|$FLEET_USER:$FLEET_USER|0750"
  "/etc/sudoers.d|sudoers.d|root:root|0755"
  "/opt/healthbutler|opt|root:root|0755"
  "/tmp|tmp|root:root|1777"
)

log() { printf '%s\n' "$*"; }
ns_of() { printf '%s-%s' "$FLEET_PREFIX" "${1#staging-}"; }
veth_of() { local n; n=$(ns_of "$1"); printf '%s' "${n:0:15}"; }

# (no `cmd | grep -q` under pipefail: grep's early exit fails the pipeline with SIGPIPE)
ns_exists() { [[ -e /run/netns/$1 ]]; }

each_host() { # callback: name octet roles
  local spec name rest octet roles
  for spec in $FLEET_HOSTS; do
    name=${spec%%=*}; rest=${spec#*=}; octet=${rest%%:*}; roles=${rest#*:}
    [[ $roles == "$rest" ]] && roles=""
    "$@" "$name" "$octet" "$roles"
  done
}

sshd_pid() { # name -> pid of the host's sshd if it runs
  local f=$FLEET_STATE/hosts/$1/sshd.pid pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == /usr/sbin/sshd ]] || return 1
  printf '%s' "$pid"
}

ensure_user() {
  if ! id "$FLEET_USER" >/dev/null 2>&1; then
    useradd --user-group --no-create-home --home-dir "$home" --shell /bin/bash "$FLEET_USER"
    echo "$FLEET_USER" > "$FLEET_STATE/created-user"
    log "changed: user $FLEET_USER"
  fi
  # '!' (locked) makes sshd refuse even a key without PAM; '*' = no password, not locked.
  if [[ $(getent shadow "$FLEET_USER" | cut -d: -f2) == '!'* ]]; then usermod -p '*' "$FLEET_USER"; fi
}

ensure_mountpoints() {
  local m target
  mkdir -p /run/sshd && chmod 0755 /run/sshd
  touch "$FLEET_STATE/created-mountpoints"
  for m in "${MOUNTS[@]}"; do
    target=${m%%|*}
    if [[ ! -d $target ]]; then
      mkdir -p "$target"
      grep -qxF "$target" "$FLEET_STATE/created-mountpoints" || echo "$target" >> "$FLEET_STATE/created-mountpoints"
    fi
  done
}

host_dirs() { # name octet roles
  local dir=$FLEET_STATE/hosts/$1 m target src owner mode
  mkdir -p "$dir/root"
  chmod 0700 "$dir"
  for m in "${MOUNTS[@]}"; do
    IFS='|' read -r target src owner mode <<<"$m"
    [[ -d $dir/root/$src ]] || { mkdir -p "$dir/root/$src"; chown "$owner" "$dir/root/$src"; chmod "$mode" "$dir/root/$src"; }
  done
  install -d -o "$FLEET_USER" -g "$FLEET_USER" -m 0700 "$dir/root/home/.ssh"
  install -o "$FLEET_USER" -g "$FLEET_USER" -m 0600 "$FLEET_PUBKEY" "$dir/root/home/.ssh/authorized_keys"
  printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$FLEET_USER" > "$dir/root/sudoers.d/$FLEET_USER"
  chmod 0440 "$dir/root/sudoers.d/$FLEET_USER"
  if [[ ,$3, == *,app,* && -n ${FLEET_TOOLS:-} && ! -e $dir/root/opt/pm2 ]]; then
    cp -a "$FLEET_TOOLS" "$dir/root/opt/pm2.tmp" && mv "$dir/root/opt/pm2.tmp" "$dir/root/opt/pm2"
  fi
  [[ -f $dir/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C "$1" -f "$dir/ssh_host_ed25519_key"
  cat > "$dir/sshd_config" <<EOF
# $1 of the local staging fleet (fleet-net.sh)
ListenAddress $FLEET_NET.$2
Port 22
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
UsePAM no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers $FLEET_USER
StrictModes yes
MaxStartups 50:30:100
MaxSessions 50
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
EOF
}

net_up() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    log "changed: bridge $bridge"
  fi
  [[ $(ip addr show dev "$bridge") == *"inet $FLEET_NET.1/24 "* ]] || ip addr add "$FLEET_NET.1/24" dev "$bridge"
  ip link set "$bridge" up
}

host_up() { # name octet roles
  local ns veth dir=$FLEET_STATE/hosts/$1 binds="" m target src
  ns=$(ns_of "$1"); veth=$(veth_of "$1")
  if ! ns_exists "$ns"; then ip netns add "$ns"; log "changed: netns $ns"; fi
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    log "changed: veth $veth"
  fi
  ip link set "$veth" master "$bridge" up
  ip -n "$ns" link set lo up
  [[ $(ip -n "$ns" addr show dev eth0) == *"inet $FLEET_NET.$2/24 "* ]] || ip -n "$ns" addr add "$FLEET_NET.$2/24" dev eth0
  ip -n "$ns" link set eth0 up
  host_dirs "$@"
  if pid=$(sshd_pid "$1"); then return 0; fi
  for m in "${MOUNTS[@]}"; do
    IFS='|' read -r target src _ <<<"$m"
    binds+="mount --bind '$dir/root/$src' '$target' && "
  done
  # Private mounts first, then sshd replaces the shell: every session inherits both namespaces.
  setsid ip netns exec "$ns" unshare --mount --propagation private \
    /bin/sh -c "$binds exec /usr/sbin/sshd -D -e -f '$dir/sshd_config'" \
    </dev/null >>"$dir/sshd.log" 2>&1 &
  for _ in $(seq 100); do
    sshd_pid "$1" >/dev/null && ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$FLEET_NET.$2/22" 2>/dev/null && break
    sleep 0.05
  done
  sshd_pid "$1" >/dev/null || { echo "sshd of $1 did not start: $(tail -n 5 "$dir/sshd.log")" >&2; exit 1; }
  log "changed: sshd $1 (pid $(sshd_pid "$1"))"
}

known_hosts() {
  local spec name rest octet out=$FLEET_STATE/known_hosts.tmp
  : > "$out"
  for spec in $FLEET_HOSTS; do
    name=${spec%%=*}; rest=${spec#*=}; octet=${rest%%:*}
    printf '%s %s\n' "$FLEET_NET.$octet" "$(cut -d' ' -f1,2 "$FLEET_STATE/hosts/$name/ssh_host_ed25519_key.pub")" >> "$out"
  done
  mv "$out" "$FLEET_STATE/known_hosts"
}

stop_pid() { # what pid
  kill -0 "$2" 2>/dev/null || return 0
  kill "$2" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$2" 2>/dev/null || { log "stopped $1 (pid $2)"; return 0; }; sleep 0.1; done
  kill -9 "$2" 2>/dev/null || true; log "killed $1 (pid $2)"
}

host_down() { # name octet roles
  local ns veth pid pids p pgdata
  ns=$(ns_of "$1"); veth=$(veth_of "$1")
  if ns_exists "$ns"; then
    # PostgreSQL first, cleanly, from inside the host (its data dir is only visible there).
    if pid=$(sshd_pid "$1"); then
      for pgdata in "$FLEET_STATE/hosts/$1/root/var-lib-postgresql"/*/main; do
        [[ -f $pgdata/postmaster.pid ]] || continue
        p=$(head -n 1 "$pgdata/postmaster.pid")
        nsenter -t "$pid" -m -n su -s /bin/sh postgres -c \
          "/usr/lib/postgresql/$(cat "$pgdata/PG_VERSION")/bin/pg_ctl -D /var/lib/postgresql/${pgdata#*/var-lib-postgresql/} -m fast -w -t 30 stop" >/dev/null 2>&1 || true
        stop_pid postgres "$p"
      done
    fi
    # Then every process left in the host's network namespace, by PID (sessions, redis, pm2, sshd).
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 50); do [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break; sleep 0.1; done
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; log "killed pid $p in $ns"; done
    if [[ -n $pids ]]; then log "stopped $(wc -w <<<"$pids") processes of $1"; fi
    ip netns del "$ns"; log "changed: removed netns $ns"
  fi
  # Deleting the namespace destroys its end of the pair and so the pair, asynchronously.
  if ip link show "$veth" >/dev/null 2>&1; then ip link del "$veth" 2>/dev/null || true; fi
}

host_status() { # name octet roles
  local ns pid procs
  ns=$(ns_of "$1")
  if ! ns_exists "$ns"; then printf '%-18s %-14s absent\n' "$1" "$FLEET_NET.$2"; return; fi
  procs=$(ip netns pids "$ns" 2>/dev/null | xargs -r ps -o comm= -p | sort | uniq -c | awk '{printf "%s%s(%s)", sep, $2, $1; sep=" "}')
  if pid=$(sshd_pid "$1"); then
    if [[ ,$3, == *,app,* ]]; then
      procs+="; /health $(curl -s --noproxy '*' -o /dev/null -m 3 -w '%{http_code}' "http://$FLEET_NET.$2:${FLEET_APP_PORT:-3000}/health" || true)"
    fi
    printf '%-18s %-14s sshd pid %s; processes: %s\n' "$1" "$FLEET_NET.$2" "$pid" "$procs"
  else
    printf '%-18s %-14s netns %s without sshd; processes: %s\n' "$1" "$FLEET_NET.$2" "$ns" "$procs"
  fi
}

case $cmd in
  up)
    mkdir -p "$FLEET_STATE/hosts"; chmod 0700 "$FLEET_STATE"
    ensure_user
    ensure_mountpoints
    net_up
    each_host host_up
    known_hosts
    ;;
  down)
    each_host host_down
    if ip link show "$bridge" >/dev/null 2>&1; then ip link del "$bridge"; log "changed: removed bridge $bridge"; fi
    if [[ -f $FLEET_STATE/created-mountpoints ]]; then
      while read -r d; do if [[ -n $d ]] && rmdir "$d" 2>/dev/null; then log "removed mount point $d"; fi; done \
        < <(sort -r "$FLEET_STATE/created-mountpoints")
    fi
    if [[ -f $FLEET_STATE/created-user ]] && id "$(cat "$FLEET_STATE/created-user")" >/dev/null 2>&1; then
      userdel "$(cat "$FLEET_STATE/created-user")" && log "removed user $(cat "$FLEET_STATE/created-user")"
    fi
    ;;
  status)
    if ip link show "$bridge" >/dev/null 2>&1; then echo "bridge $bridge $FLEET_NET.1/24"; else echo "bridge $bridge absent"; fi
    each_host host_status
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
