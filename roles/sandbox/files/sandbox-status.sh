#!/bin/sh
# One line per sandbox component: name, state, detail.
# usage: sandbox-status.sh <pg bindir> <socket dir> <pg port> <redis port> <pm2> <pm2 home> <app> <health url> <wal archive>
set -u
pgbin=$1; sock=$2; pgport=$3; rport=$4; pm2=$5; pm2_home=$6; app=$7; url=$8; archive=$9
if "$pgbin/pg_isready" -q -h "$sock" -p "$pgport"; then echo "postgresql: up (port $pgport)"; else echo "postgresql: down (port $pgport)"; fi
if [ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ]; then echo "redis: up (port $rport)"; else echo "redis: down (port $rport)"; fi
if [ -f "$pm2_home/pm2.pid" ] && kill -0 "$(cat "$pm2_home/pm2.pid")" 2>/dev/null; then
  pid=$(PM2_HOME=$pm2_home "$pm2" pid "$app" 2>/dev/null | tail -n 1)
  if [ -n "$pid" ] && [ "$pid" != 0 ]; then echo "pm2 $app: online (pid $pid)"; else echo "pm2 $app: not running"; fi
else
  echo "pm2 $app: no PM2 daemon"
fi
code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" 2>/dev/null)
echo "app $url: HTTP ${code:-000}"
n=$(find "$archive" -maxdepth 1 -type f 2>/dev/null | grep -c '/[0-9A-F]\{24\}$')
echo "wal archive: $n segments"
exit 0
