#!/usr/bin/env bash
# Runs the OneWindow stack on this machine with embedded defaults (SQLite, local folders standing
# in for the gateway devices and the offline media): the citizen portal (ow-internet), the
# registrar back office (ow-extranet), the cadastral zone (ow-intranet) and every zone's ferry
# agents. Keys are generated on first start under .run/keys (never committed); the demo register
# and staff are seeded once, and the staff credentials are printed that one time (kept in
# .run/demo-credentials.txt, mode 0600, and as JSON in .run/demo-seed.json). Ctrl-C stops
# everything cleanly.
#
# Settings (environment variables; the defaults are what a person trying it on one machine wants):
#   OW_PROFILE=release|debug   which build to run (default release; debug reuses `cargo test`'s)
#   OW_BIN_DIR=DIR             run the binaries in DIR as they are, without building
#   OW_RUN_DIR=DIR             where keys, databases, folders and logs go (default .run)
#   OW_PORTAL_LISTEN=ADDR      the portal's listen address (default 127.0.0.1:8080)
#   OW_PORTAL_URL=URL          the portal's public URL, as browsers reach it (default http://ADDR)
#   OW_OFFICE_LISTEN=ADDR      the back office's listen address (default 127.0.0.1:8082)
#   OW_OFFICE_URL=URL          the back office's public URL (default http://ADDR)
#   OW_CADASTRE_LISTEN=ADDR    the cadastral zone's listen address (default 127.0.0.1:8083)
#   OW_COURIER_EVERY=SECONDS   how often the disc courier carries offline media between the
#                              extranet and the intranet (default 60; 0: only when you run
#                              deploy/local/courier.sh yourself)
# To try the portal from a phone on the same network: OW_PORTAL_LISTEN=0.0.0.0:8080
# OW_PORTAL_URL=http://<this machine's address>:8080 (README, "Try it from a phone").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
run=${OW_RUN_DIR:-$root/.run}
profile=${OW_PROFILE:-release}
portal_listen=${OW_PORTAL_LISTEN:-127.0.0.1:8080}
portal_url=${OW_PORTAL_URL:-http://$portal_listen}
office_listen=${OW_OFFICE_LISTEN:-127.0.0.1:8082}
office_url=${OW_OFFICE_URL:-http://$office_listen}
portal_url=${portal_url%/}
office_url=${office_url%/}
cadastre_listen=${OW_CADASTRE_LISTEN:-127.0.0.1:8083}
cadastre_url=http://$cadastre_listen
courier_every=${OW_COURIER_EVERY:-60}
case "$courier_every" in
  ''|*[!0-9]*) echo "OW_COURIER_EVERY must be whole seconds, not $courier_every" >&2; exit 2 ;;
esac
# A health check must reach the server even when it listens on every interface.
local_url() {
  local addr=$1
  case "$addr" in
    0.0.0.0:*) addr="127.0.0.1:${addr#0.0.0.0:}" ;;
    "[::]:"*) addr="[::1]:${addr#\[::\]:}" ;;
  esac
  echo "http://$addr"
}

if [ -n "${OW_BIN_DIR:-}" ]; then
  bin=$(cd "$OW_BIN_DIR" && pwd)
  echo "==> using the binaries in $bin (no build)"
else
  case "$profile" in
    release) build_flags=(--release) ;;
    debug) build_flags=() ;;
    *) echo "OW_PROFILE must be release or debug, not $profile" >&2; exit 2 ;;
  esac
  echo "==> building ow-ferry, ow-internet, ow-extranet and ow-intranet ($profile); the first build takes several minutes"
  # Cargo's own progress lines (Compiling …) show what it is doing.
  cargo build "${build_flags[@]}" -p ow-ferry -p ow-internet -p ow-extranet -p ow-intranet
  bin="${CARGO_TARGET_DIR:-$root/target}/$profile"
fi
ferry="$bin/ow-ferry"
for b in ow-ferry ow-internet ow-extranet ow-intranet; do
  if [ ! -x "$bin/$b" ]; then
    echo "$bin/$b is missing: build it (cargo build -p $b) or unset OW_BIN_DIR" >&2
    exit 1
  fi
done

# The configurations in deploy/local/ name their folders as ../../.run/…; the copies the stack
# runs with, in $run/config/, name the run folder chosen here.
mkdir -p "$run/keys" "$run/config"
for file in deploy/local/*.toml; do
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "${line//..\/..\/.run/$run}"
  done <"$file" >"$run/config/$(basename "$file")"
done
conf="$run/config"
portal_sets=(--set "listen=$portal_listen" --set "public_url=$portal_url")
office_sets=(--set "listen=$office_listen" --set "public_url=$office_url"
  --set "portal_verify_url=$portal_url/verify")
cadastre_sets=(--set "listen=$cadastre_listen" --set "public_url=$cadastre_url")

echo "==> preparing keys and the trust file in $run"
for zone in internet extranet intranet; do
  if [ ! -f "$run/keys/$zone.sign.secret" ]; then
    "$ferry" keygen --zone "$zone" --out "$run/keys" >/dev/null
    echo "    generated $zone zone keys in $run/keys"
  fi
done

# The trust file pins, per channel, the sender's public signing keys and the receiver's
# encryption key. Public material only; every zone may hold the same file.
"$ferry" trust --keys "$run/keys" --out "$run/trust.toml" \
  --channel internet-to-extranet --channel extranet-to-internet \
  --channel extranet-to-intranet --channel intranet-to-extranet

# Personal-data keys of both zones, the extranet's certificate-signing key.
if [ ! -f "$run/keys/internet.pii.keys" ]; then
  OW_LOG=warn "$bin/ow-internet" init-pii-key "$run/keys/internet.pii.keys" >/dev/null
fi
OW_LOG=warn "$bin/ow-extranet" init-keys --config "$conf/extranet.toml" "${office_sets[@]}" >/dev/null
OW_LOG=warn "$bin/ow-intranet" init-keys --config "$conf/intranet.toml" "${cadastre_sets[@]}" >/dev/null

# The demo district, staff, units and rights holders; credentials are printed when created.
echo "==> seeding the demo register and staff (once)"
umask 077
if [ ! -f "$run/demo-credentials.txt" ]; then
  OW_LOG=warn "$bin/ow-extranet" seed-demo --config "$conf/extranet.toml" "${office_sets[@]}" \
    --json-out "$run/demo-seed.json" | tee "$run/demo-credentials.txt"
else
  OW_LOG=warn "$bin/ow-extranet" seed-demo --config "$conf/extranet.toml" "${office_sets[@]}" >/dev/null
  echo "    demo data present; staff credentials are in $run/demo-credentials.txt"
fi
# The cadastral zone: demo surveyors and existing parcels around the demo units.
if [ ! -f "$run/intranet-credentials.txt" ]; then
  OW_LOG=warn "$bin/ow-intranet" seed-demo --config "$conf/intranet.toml" "${cadastre_sets[@]}" \
    --json-out "$run/intranet-seed.json" --surveys-out "$run/demo-surveys" \
    | tee "$run/intranet-credentials.txt"
else
  OW_LOG=warn "$bin/ow-intranet" seed-demo --config "$conf/intranet.toml" "${cadastre_sets[@]}" >/dev/null
  echo "    cadastral demo data present; surveyor credentials are in $run/intranet-credentials.txt"
fi
umask 022

pids=()
stop() {
  echo
  echo "==> stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  echo "==> stopped"
}
trap 'stop; exit 0' INT TERM

echo "==> starting the ferry agents, the portal, the back office and the cadastral zone"
for zone in internet extranet intranet; do
  "$ferry" run --config "$conf/$zone.ferry.toml" >>"$run/$zone-ferry.log" 2>&1 &
  pids+=("$!")
done
"$bin/ow-internet" serve --config "$conf/internet.toml" "${portal_sets[@]}" >>"$run/internet.log" 2>&1 &
pids+=("$!")
"$bin/ow-extranet" serve --config "$conf/extranet.toml" "${office_sets[@]}" >>"$run/extranet.log" 2>&1 &
pids+=("$!")
"$bin/ow-intranet" serve --config "$conf/intranet.toml" "${cadastre_sets[@]}" >>"$run/intranet.log" 2>&1 &
pids+=("$!")
# Offline media (光盘摆渡): folders under $run/media/drive/ stand for the disc drive; the courier
# exports, carries and imports discs between the extranet and the intranet on a timer, and has
# each zone write its receipts (for what landed since its last one) before it exports.
mkdir -p "$run/media/drive"
if [ "$courier_every" -gt 0 ]; then
  OW_FERRY="$ferry" OW_RUN_DIR="$run" "$root/deploy/local/courier.sh" --every "$courier_every" \
    >>"$run/courier.log" 2>&1 &
  pids+=("$!")
fi
healthy=
for _ in $(seq 1 300); do
  if "$bin/ow-internet" healthcheck --url "$(local_url "$portal_listen")" >/dev/null 2>&1 &&
     "$bin/ow-extranet" healthcheck --url "$(local_url "$office_listen")" >/dev/null 2>&1 &&
     "$bin/ow-intranet" healthcheck --url "$(local_url "$cadastre_listen")" >/dev/null 2>&1; then
    healthy=1
    break
  fi
  sleep 0.2
done
for pid in "${pids[@]}"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "a process failed to start; see $run/*.log" >&2
    stop
    exit 1
  fi
done
if [ -z "$healthy" ]; then
  echo "the servers did not answer their health checks within a minute; see $run/*.log" >&2
  stop
  exit 1
fi

cat <<INFO
==> OneWindow local stack is running
    citizen portal (网上一窗办事平台):  $portal_url/
    certificate check (证书查验):       $portal_url/verify
    registrar back office (登记业务):   $office_url/   (staff: $run/demo-credentials.txt)
    cadastral review (权籍调查成果审查): $cadastre_url/   (surveyors: $run/intranet-credentials.txt)
                     demo survey files to submit: $run/demo-surveys/ (one overlaps a parcel)
    logs:            $run/internet.log, $run/extranet.log, $run/intranet.log, $run/<zone>-ferry.log
    send a bundle:   $ferry pack --config $conf/internet.ferry.toml \\
                       --channel internet-to-extranet --kind demo.hello README.md
    it lands in:     $run/extranet/inbox/internet/
    status:          $ferry status --config $conf/extranet.ferry.toml
    audit the log:   $ferry log verify --log $run/extranet/ferry/log/internet-to-extranet-rx \\
                       --public-key $run/keys/extranet.sign.pub
    offline media:   discs carried every ${courier_every}s (0: off) between the extranet and the
                     intranet, in $run/media/drive/; carry now: OW_FERRY=$ferry \\
                       OW_RUN_DIR=$run deploy/local/courier.sh   (log: $run/courier.log)
    Ctrl-C stops everything.
INFO
wait "${pids[@]}"
