#!/bin/sh
# Stop every process the sandbox started, by the PIDs it recorded, and report each.
# usage: sandbox-stop.sh <pm2 bin> <pm2 home> <redis pidfile> <pgdata> <pg bindir> <pg os user> [<more pgdata>...]
set -u
pm2=$1; pm2_home=$2; redis_pid=$3; pgdata=$4; pgbin=$5; pguser=$6
shift 6

stop_pid() { # name pid
  [ -n "$2" ] && kill -0 "$2" 2>/dev/null || return 0
  kill "$2" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$2" 2>/dev/null || { echo "stopped $1 (pid $2)"; return 0; }; sleep 0.1; done
  kill -9 "$2" 2>/dev/null; echo "killed $1 (pid $2)"
}

if [ -f "$pm2_home/pm2.pid" ]; then
  daemon=$(cat "$pm2_home/pm2.pid")
  apps=$(find "$pm2_home/pids" -maxdepth 1 -name '*.pid' -exec cat {} + 2>/dev/null)
  PM2_HOME=$pm2_home "$pm2" kill >/dev/null 2>&1
  stop_pid pm2-daemon "$daemon"
  for p in $apps; do stop_pid app "$p"; done
fi
[ -f "$redis_pid" ] && stop_pid redis "$(cat "$redis_pid")"
for dir in "$pgdata" "$@"; do
  [ -f "$dir/postmaster.pid" ] || continue
  pg=$(head -n 1 "$dir/postmaster.pid")
  su -s /bin/sh "$pguser" -c "'$pgbin/pg_ctl' -D '$dir' -m fast -w -t 60 stop" >/dev/null 2>&1
  stop_pid "postgres $(basename "$dir")" "$pg"
done
exit 0
