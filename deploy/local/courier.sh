#!/usr/bin/env bash
# The disc courier of the local stack (光盘摆渡, docs/offline-media.md): carries offline media
# between the extranet and the intranet. For each media channel it exports the sending zone's
# pending bundles onto a set of "discs" (folders standing for them), carries the set, and imports
# every disc on the receiving zone, through that zone's own checks and landing. Before a zone
# exports, it writes its receipts (ow-ferry receipts write --if-new) for what landed on the
# opposite channel since its last receipt, so they travel back on the next set.
#
#   deploy/local/courier.sh                 one round, both directions (what an operator runs)
#   deploy/local/courier.sh --every 60      a round every 60 seconds until stopped (demo mode;
#                                           deploy/local/run.sh starts this)
#   deploy/local/courier.sh --iso           also write and carry ISO images instead of folders
#   deploy/local/courier.sh --capacity 25G  the disc size (default 4.7G, a DVD)
#
# The disc drive, per channel, under $OW_RUN_DIR/media/drive/<channel>/:
#   burn/      the burner's staging area: sets being written
#   tray/      sets carried across, waiting to be imported
#   imported/  discs imported (kept, as the carriage register keeps discs)
#   refused/   discs refused, each with <disc>.reason.txt saying why
#
# Settings: OW_RUN_DIR (default .run), OW_FERRY (the ow-ferry binary; default
# $OW_BIN_DIR/ow-ferry, else target/$OW_PROFILE/ow-ferry with OW_PROFILE defaulting to release).
# One courier at a time: a second one started while a round runs waits for it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
run=${OW_RUN_DIR:-$root/.run}
if [ -n "${OW_FERRY:-}" ]; then
  ferry=$OW_FERRY
elif [ -n "${OW_BIN_DIR:-}" ]; then
  ferry=$OW_BIN_DIR/ow-ferry
else
  ferry="${CARGO_TARGET_DIR:-$root/target}/${OW_PROFILE:-release}/ow-ferry"
fi
conf=$run/config
every=0
capacity=4.7G
iso=
while [ $# -gt 0 ]; do
  case "$1" in
    --every) every=${2:?--every needs a number of seconds}; shift 2 ;;
    --capacity) capacity=${2:?--capacity needs a size, e.g. 4.7G}; shift 2 ;;
    --iso) iso=1; shift ;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "courier.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$every" in
  ''|*[!0-9]*) echo "courier.sh: --every takes whole seconds, not $every" >&2; exit 2 ;;
esac
if [ ! -x "$ferry" ]; then
  echo "courier.sh: $ferry is missing; build it (cargo build -p ow-ferry) or set OW_FERRY" >&2
  exit 1
fi
for zone in extranet intranet; do
  if [ ! -f "$conf/$zone.ferry.toml" ]; then
    echo "courier.sh: $conf/$zone.ferry.toml is missing; start the stack once (deploy/local/run.sh)" >&2
    exit 1
  fi
done

# channel, sending zone, receiving zone
routes=(
  "intranet-to-extranet intranet extranet"
  "extranet-to-intranet extranet intranet"
)

say() { echo "[courier $(date -u +%H:%M:%S)] $*"; }

# Imports one disc (a folder or an image) on the receiving zone and files it by the outcome.
import_disc() {
  local channel=$1 to=$2 disc=$3 drive=$4 label=$5 out status
  status=0
  out=$("$ferry" media import --config "$conf/$to.ferry.toml" --channel "$channel" \
    --disc "$disc" 2>&1) || status=$?
  case "$status" in
    0)
      mv "$disc" "$drive/imported/$label"
      say "$channel: imported $label on the $to zone: $(printf '%s' "$out" |
        tr -d '\n' | sed -n 's/.*"landed": \([0-9]*\).*"set_status": "\([^"]*\)".*/\1 landed; \2/p')"
      ;;
    1)
      mv "$disc" "$drive/refused/$label"
      printf '%s\n' "$out" >"$drive/refused/$label.reason.txt"
      say "$channel: the $to zone REFUSED $label: $out"
      ;;
    *)
      say "$channel: could not import $label (left in the tray, tried again next round): $out"
      ;;
  esac
}

# Before a zone exports on a channel it writes its receipts for what it landed on the opposite
# channel, so they leave on this very set (or through the zone's gateway, when the return channel
# has a [[send]] agent). `--if-new` writes one only when something landed that the zone's last
# receipt for that channel did not list, not counting receipts it imported: receipts are
# cumulative, so a quiet channel adds nothing to the discs, and two zones never answer each
# other's receipts round after round.
write_receipts() {
  local channel=$1 from=$2 to=$3 back out status n
  back="$to-to-$from"
  status=0
  out=$(OW_LOG=error "$ferry" receipts write --if-new --config "$conf/$from.ferry.toml" \
    --channel "$back" 2>&1) || status=$?
  if [ "$status" -ne 0 ]; then
    say "$channel: the $from zone could not write its receipts for $back (exporting without them): $out"
    return 0
  fi
  n=$(printf '%s\n' "$out" | grep -c '"bundle_id"' || true)
  if [ "$n" -gt 0 ]; then
    say "$channel: the $from zone wrote $n receipt(s) for what landed on $back"
  fi
}

# Moves a set (or its images) from the burner to the tray: the carriage across the gap.
carry() {
  local channel=$1 set=$2 drive=$3 name
  name=$(basename "$set")
  if [ -n "$iso" ]; then
    mkdir -p "$drive/tray/$name"
    for image in "$drive/burn/$name"-*.iso "$drive/burn/$name.iso"; do
      if [ -f "$image" ]; then mv "$image" "$drive/tray/$name/"; fi
    done
    rm -rf "$set"
  else
    mv "$set" "$drive/tray/"
  fi
}

round() {
  local line channel from to drive set out status n=0
  for line in "${routes[@]}"; do
    read -r channel from to <<<"$line"
    drive=$run/media/drive/$channel
    mkdir -p "$drive/burn" "$drive/tray" "$drive/imported" "$drive/refused"
    write_receipts "$channel" "$from" "$to"
    set=$drive/burn/set-$(date -u +%Y%m%dT%H%M%SZ)-$$-$((n++))
    status=0
    iso_args=()
    if [ -n "$iso" ]; then iso_args=(--iso "$set.iso"); fi
    out=$("$ferry" media export --config "$conf/$from.ferry.toml" --channel "$channel" \
      --set "$set" --capacity "$capacity" "${iso_args[@]}" 2>&1) || status=$?
    if [ "$status" -eq 0 ]; then
      say "$channel: exported on the $from zone: $(printf '%s' "$out" | tr -d '\n' |
        sed -n 's/.*"disc_count": \([0-9]*\).*"bundles": \([0-9]*\).*/\1 disc(s), \2 bundle(s)/p')"
      carry "$channel" "$set" "$drive"
    elif printf '%s' "$out" | grep -q "nothing to export"; then
      rmdir "$set" 2>/dev/null || true
    elif printf '%s' "$out" | grep -q "must be carried"; then
      # An earlier export was killed after it recorded its discs: carry every finished set.
      say "$channel: $out"
      rmdir "$set" 2>/dev/null || true
      for done_set in "$drive/burn"/set-*; do
        if [ -d "$done_set" ]; then carry "$channel" "$done_set" "$drive"; fi
      done
    else
      say "$channel: export on the $from zone stopped: $out"
      rmdir "$set" 2>/dev/null || true
      find "$drive/burn" -mindepth 1 -maxdepth 1 -type d -empty -delete
    fi
    # Import every disc in the tray, in any order: the importer holds what it cannot land yet.
    for set in "$drive/tray"/set-*; do
      [ -d "$set" ] || continue
      for disc in "$set"/disc-* "$set"/*.iso; do
        [ -e "$disc" ] || continue
        import_disc "$channel" "$to" "$disc" "$drive" "$(basename "$set")-$(basename "$disc")"
      done
      rmdir "$set" 2>/dev/null || true
    done
  done
}

mkdir -p "$run/media/drive"
exec 9>"$run/media/drive/.courier.lock"
flock 9
if [ "$every" -eq 0 ]; then
  round
  exit 0
fi
napping=
trap 'if [ -n "$napping" ]; then kill "$napping" 2>/dev/null || true; fi; exit 0' INT TERM
say "carrying discs every $every s (Ctrl-C stops)"
while :; do
  round || say "the round failed; trying again in $every s"
  flock -u 9
  sleep "$every" &
  napping=$!
  wait "$napping" || true
  napping=
  flock 9
done
