#!/usr/bin/env bash
# A real S3-compatible server for Cairn's tests, CI and benchmarks: a throwaway
# single-node Ceph cluster (1 mon, 1 osd, RADOS Gateway) from Debian's packages,
# bound to 127.0.0.1 only.
#
# Usage: scripts/s3-server.sh install
#        scripts/s3-server.sh start  [DIR]   # then: source DIR/env
#        scripts/s3-server.sh status [DIR]   # exit 0 if running and answering S3
#        scripts/s3-server.sh stop   [DIR]
# DIR defaults to ${TMPDIR:-/tmp}/cairn-s3. Each fresh start wipes DIR (data is throwaway).
# Env: RGW_PORT=7480 MON_V2=3300 MON_V1=6789 OSD_STORE=memstore|bluestore
#      MEMSTORE_BYTES=8GiB BLUESTORE_BYTES=20GiB START_TIMEOUT=120 STOP_WAIT=10 (s)
#      S3_ACCESS_KEY / S3_SECRET_KEY (defaults below; the server only listens on 127.0.0.1)
set -euo pipefail

CMD=${1:-}
DIR=${2:-${TMPDIR:-/tmp}/cairn-s3}
# Absolute: the path is written into ceph.conf and matched against daemons' command lines.
DIR=$(realpath -m -- "$DIR")
[ "$DIR" != / ] || { echo "s3-server: refusing DIR=/" >&2; exit 2; }
RGW_PORT=${RGW_PORT:-7480}
MON_V2=${MON_V2:-3300}
MON_V1=${MON_V1:-6789}
OSD_STORE=${OSD_STORE:-memstore}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-8589934592}
BLUESTORE_BYTES=${BLUESTORE_BYTES:-21474836480}
START_TIMEOUT=${START_TIMEOUT:-120}
ACCESS=${S3_ACCESS_KEY:-cairntestaccess}
SECRET=${S3_SECRET_KEY:-cairntestsecret0123456789}
REGION=us-east-1
HOST=127.0.0.1
CONF="$DIR/ceph.conf"
PIDS="$DIR/pids"     # lines "name pid", in start order
MARKER="$DIR/.cairn-s3"

PACKAGES=(radosgw ceph-mon ceph-osd ceph-common)
COMMANDS=(radosgw ceph-mon ceph-osd ceph-authtool monmaptool radosgw-admin ceph)

log() { echo "s3-server: $*" >&2; }
die() { log "error: $*"; exit 1; }

have_all() {
  local c
  for c in "${COMMANDS[@]}" curl setsid flock timeout; do command -v "$c" >/dev/null 2>&1 || return 1; done
}

do_install() {
  if have_all; then log "ceph packages already installed"; return 0; fi
  [ "$(id -u)" = 0 ] || die "ceph packages missing; run 'scripts/s3-server.sh install' as root"
  local t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  # The index may be stale or empty (fresh containers), and install needs it.
  apt-get update -qq
  # curl (with --aws-sigv4) is the readiness probe; util-linux/coreutils give setsid/flock/timeout.
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" curl util-linux coreutils >/dev/null
  have_all || die "packages installed but some commands are still missing: ${COMMANDS[*]}"
  log "installed ceph packages in $((SECONDS - t0)) s"
}

# --- process bookkeeping -----------------------------------------------------

# A recorded pid is ours only if it is alive and its command line names our
# config file: pids get reused, and we must never signal someone else's process.
is_ours() {
  local pid=$1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- " $CONF "
}

all_alive() {
  [ -s "$PIDS" ] || return 1
  local name pid n=0
  while read -r name pid; do
    is_ours "$pid" || return 1
    n=$((n + 1))
  done < "$PIDS"
  [ "$n" -ge 3 ]  # mon, osd and rgw
}

# Signed S3 request (SigV4) with the test user's keys; prints the HTTP status,
# or the response body with S3_BODY=1. Extra args go to curl.
s3_req() {
  local method=$1 path=$2 key secret; shift 2
  key=$(sed -n 's/^export AWS_ACCESS_KEY_ID=//p' "$DIR/env" 2>/dev/null || true)
  secret=$(sed -n 's/^export AWS_SECRET_ACCESS_KEY=//p' "$DIR/env" 2>/dev/null || true)
  local out=(-o /dev/null -w '%{http_code}')
  [ "${S3_BODY:-0}" = 1 ] && out=()
  curl -sS "${out[@]}" --max-time 10 -X "$method" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "${key:-$ACCESS}:${secret:-$SECRET}" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@" \
    "$(endpoint)$path" 2>/dev/null || true
}

endpoint() {
  local e
  e=$(sed -n 's/^export CAIRN_S3_ENDPOINT=//p' "$DIR/env" 2>/dev/null || true)
  echo "${e:-http://$HOST:$RGW_PORT}"
}

is_up() {
  all_alive && [ -s "$DIR/env" ] && [ "$(s3_req GET /)" = 200 ]
}

# stop_one NAME PID SIGNAL: signal, wait up to STOP_WAIT s, then SIGKILL.
stop_one() {
  local name=$1 pid=$2 sig=$3 i
  is_ours "$pid" || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for i in $(seq 1 $((${STOP_WAIT:-10} * 4))); do
    is_ours "$pid" || { log "stopped $name ($pid)"; return 0; }
    sleep 0.25
  done
  log "$name ($pid) still running; SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do is_ours "$pid" || return 0; sleep 0.25; done
  log "warning: $name ($pid) did not exit"
}

do_stop() {
  [ -s "$PIDS" ] || { log "nothing running in $DIR"; return 0; }
  local name pid store
  store=$(cat "$DIR/store" 2>/dev/null || echo memstore)
  # One at a time in reverse start order: radosgw's clean shutdown hangs (up to
  # its 120 s alarm) if the mon/osd are already gone.
  while read -r name pid; do
    case "$name" in
      # A memstore OSD dumps every object to disk on a clean shutdown (can be
      # GiBs); the data is throwaway (start wipes DIR), so skip that.
      osd.*) if [ "$store" = memstore ]; then stop_one "$name" "$pid" KILL; else stop_one "$name" "$pid" TERM; fi ;;
      *) stop_one "$name" "$pid" TERM ;;
    esac
  done < <(tac "$PIDS")
  rm -f "$PIDS"
}

# --- start -------------------------------------------------------------------

DEADLINE=0
STARTED=0

dump_logs() {
  local f
  for f in "$DIR"/log/*; do
    [ -s "$f" ] || continue
    echo "----- tail $f" >&2
    tail -n 15 "$f" >&2
  done
}

on_start_exit() {
  local rc=$?
  if [ "$rc" != 0 ] && [ "$STARTED" = 0 ]; then
    log "start failed (exit $rc); logs in $DIR/log"
    dump_logs
    do_stop || true
  fi
}

# wait_for DESCRIPTION PID COMMAND...: retry COMMAND until it succeeds; give up
# at the deadline or as soon as the daemon PID died.
wait_for() {
  local what=$1 pid=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    is_ours "$pid" || die "$what: daemon $pid exited"
    [ "$SECONDS" -lt "$DEADLINE" ] || die "$what: timed out after ${START_TIMEOUT}s"
    sleep 0.5
  done
}

port_busy() { timeout 2 bash -c ": </dev/tcp/$HOST/$1" 2>/dev/null; }

# Start a daemon in the foreground of its own session (so the caller's Ctrl-C or
# terminal hang-up does not reach it), with no inherited stdio (so `$(start)` or
# a CI step capturing output does not wait on it), without our lock fd 9 (or it
# would hold the lock for its whole life), and record its pid in LAST_PID.
# Not run inside $(...): setsid must exec in place (it only forks when it is a
# process-group leader), so that $! is the daemon itself.
LAST_PID=
launch() {
  local name=$1; shift
  setsid "$@" -f </dev/null >>"$DIR/log/$name.out" 2>&1 9>&- &
  LAST_PID=$!
  echo "$name $LAST_PID" >> "$PIDS"
}

ceph_cli() { timeout 20 ceph -c "$CONF" --connect-timeout 10 "$@"; }
osd_up() { ceph_cli osd stat -f json | grep -q '"num_up_osds":1'; }
http_up() { curl -s -o /dev/null --max-time 5 "http://$HOST:$RGW_PORT/"; }
user_ok() {
  timeout 30 radosgw-admin -c "$CONF" user info --uid=cairn >/dev/null 2>&1 ||
    timeout 30 radosgw-admin -c "$CONF" user create --uid=cairn --display-name=cairn \
      --access-key="$ACCESS" --secret-key="$SECRET" >/dev/null
}
# RGW creates its index, data and multipart pools on first use (2-3 s on a fresh
# cluster); touch all three here so callers never see that latency or a transient
# error. (curl 7.88 signs "?uploads" wrongly; "?uploads=" is equivalent.)
bucket_ok() {
  local b="cairn-probe-$$" up
  [ "$(s3_req PUT "/$b")" = 200 ] || return 1
  [ "$(s3_req PUT "/$b/probe" --data-binary probe)" = 200 ] || return 1
  up=$(S3_BODY=1 s3_req POST "/$b/probe?uploads=" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p')
  [ -n "$up" ] || return 1
  [ "$(s3_req DELETE "/$b/probe?uploadId=$up")" = 204 ] || return 1
  [ "$(s3_req DELETE "/$b/probe")" = 204 ] || return 1
  [ "$(s3_req DELETE "/$b")" = 204 ]
}

print_env() { cat "$DIR/env"; }

do_start() {
  have_all || do_install
  local t0=$SECONDS
  if is_up; then
    log "already running from $DIR"
    [ "$(endpoint)" = "http://$HOST:$RGW_PORT" ] || log "note: running on $(endpoint), not port $RGW_PORT"
    print_env
    return 0
  fi
  if [ -s "$PIDS" ]; then log "stale or unhealthy server in $DIR; stopping it"; do_stop; fi

  local p
  for p in "$RGW_PORT" "$MON_V2" "$MON_V1"; do
    port_busy "$p" && die "port $HOST:$p already in use (another server or DIR?); set RGW_PORT/MON_V2/MON_V1"
  done
  case "$OSD_STORE" in memstore|bluestore) ;; *) die "OSD_STORE must be memstore or bluestore";; esac

  # Only wipe a directory this script created: DIR is user input.
  if [ -e "$DIR" ] && [ ! -e "$MARKER" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
    die "$DIR exists, is not empty and was not created by this script; refusing to wipe it"
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR"/{mon/ceph-a,osd/ceph-0,run,log,rgw}
  touch "$MARKER"
  echo "$OSD_STORE" > "$DIR/store"
  STARTED=0
  trap on_start_exit EXIT
  DEADLINE=$((SECONDS + START_TIMEOUT))

  local fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  # auth none: a loopback-only throwaway cluster; S3 auth (SigV4) is still enforced by RGW.
  cat > "$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v2:$HOST:$MON_V2,v1:$HOST:$MON_V1]
public addr = $HOST
cluster addr = $HOST
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
# one OSD: size-1 pools, few PGs, no host-level CRUSH spreading
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
osd crush chooseleaf type = 0
# never refuse writes because the host disk looks full-ish
mon data avail warn = 1
mon data avail crit = 0
ms mon client mode = crc secure
ms client mode = crc secure
ms mon service mode = crc secure
ms mon cluster mode = crc secure
ms service mode = crc secure
ms cluster mode = crc secure
[mon]
mon data = $DIR/mon/\$cluster-\$id
mon cluster log file = $DIR/log/cluster.log
# commit map changes every 0.1 s instead of 1 s: each RGW pool creation waits
# for a new osdmap, so this cuts several seconds off the start
paxos propose interval = 0.1
[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = $OSD_STORE
# memstore keeps everything in RAM: room for several 2 GiB benchmark files
memstore device bytes = $MEMSTORE_BYTES
bluestore block path = $DIR/osd/\$cluster-\$id/block.file
bluestore block create = true
bluestore block size = $BLUESTORE_BYTES
osd memory target = 1073741824
# RGW stripes objects into 4 MiB RADOS objects; raise the cap anyway for large heads/parts
osd max object size = 1073741824
# the OSD reports itself full (writes fail) at 98% of the store instead of 95%
mon osd full ratio = 0.98
mon osd backfillfull ratio = 0.97
mon osd nearfull ratio = 0.95
[client.rgw.a]
# tcp_nodelay: without it every small request pays a ~40 ms Nagle/delayed-ACK stall
rgw frontends = beast endpoint=$HOST:$RGW_PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw thread pool size = 64
# deleted/overwritten objects' data goes to RGW's garbage collector, which by
# default waits 2 h; with memstore that RAM would stay used across benchmark runs
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF

  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --addv a "[v2:$HOST:$MON_V2,v1:$HOST:$MON_V1]" --fsid "$fsid" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >>"$DIR/log/mkfs.out" 2>&1

  local mon osd rgw osd_uuid osd_id
  launch mon.a ceph-mon -c "$CONF" -i a; mon=$LAST_PID
  wait_for "monitor" "$mon" ceph_cli mon stat

  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_id=$(ceph_cli osd new "$osd_uuid")
  [ "$osd_id" = 0 ] || die "unexpected osd id '$osd_id'"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/mkfs.out" 2>&1
  launch osd.0 ceph-osd -c "$CONF" -i 0; osd=$LAST_PID
  wait_for "osd" "$osd" osd_up

  launch rgw.a radosgw -c "$CONF" -n client.rgw.a; rgw=$LAST_PID
  wait_for "radosgw http" "$rgw" http_up
  wait_for "radosgw user" "$rgw" user_ok

  cat > "$DIR/env" <<EOF
export CAIRN_S3_ENDPOINT=http://$HOST:$RGW_PORT
export CAIRN_S3_REGION=$REGION
export CAIRN_S3_FORCE_PATH_STYLE=true
export AWS_ACCESS_KEY_ID=$ACCESS
export AWS_SECRET_ACCESS_KEY=$SECRET
EOF
  wait_for "signed S3 bucket create/delete" "$rgw" bucket_ok
  all_alive || die "a daemon exited during startup"

  STARTED=1
  log "ceph radosgw ($OSD_STORE) up in $((SECONDS - t0)) s; pids: $(awk '{printf "%s=%s ", $1, $2}' "$PIDS")"
  print_env
}

do_status() {
  if is_up; then log "running from $DIR"; print_env; return 0; fi
  if all_alive; then log "daemons alive in $DIR but S3 is not answering"; else log "not running ($DIR)"; fi
  return 1
}

# Serialize start/stop/status on the same DIR (the lock lives beside DIR since start wipes DIR).
with_lock() {
  mkdir -p "$(dirname "$DIR")"
  exec 9>"$DIR.lock"
  flock -w $((START_TIMEOUT + 60)) 9 || die "could not lock $DIR.lock"
  "$@"
}

case "$CMD" in
  install) do_install ;;
  start)   with_lock do_start ;;
  stop)    with_lock do_stop ;;
  status)  with_lock do_status ;;
  *) echo "usage: $0 install | start [DIR] | stop [DIR] | status [DIR]" >&2; exit 2 ;;
esac
