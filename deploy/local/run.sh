#!/usr/bin/env bash
# Runs the OneWindow stack on this machine with embedded defaults (SQLite, local folders standing
# in for the gateway devices and the offline media): the citizen portal (ow-internet), the
# registrar back office (ow-extranet) and every zone's ferry agents. Keys are generated on first
# start under .run/keys (never committed); the demo register and staff are seeded once, and the
# staff credentials are printed that one time (kept in .run/demo-credentials.txt, mode 0600).
# Ctrl-C stops everything cleanly.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
run="$root/.run"
profile=${OW_PROFILE:-release}

echo "==> building ($profile)"
if [ "$profile" = release ]; then
  cargo build --release --quiet -p ow-ferry -p ow-internet -p ow-extranet
else
  cargo build --quiet -p ow-ferry -p ow-internet -p ow-extranet
fi
bin="${CARGO_TARGET_DIR:-$root/target}/$profile"
ferry="$bin/ow-ferry"

mkdir -p "$run/keys"
for zone in internet extranet intranet; do
  if [ ! -f "$run/keys/$zone.sign.secret" ]; then
    "$ferry" keygen --zone "$zone" --out "$run/keys" >/dev/null
    echo "==> generated $zone zone keys in .run/keys"
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
OW_LOG=warn "$bin/ow-extranet" init-keys --config deploy/local/extranet.toml >/dev/null

# The demo district, staff, units and rights holders; credentials are printed when created.
umask 077
if [ ! -f "$run/demo-credentials.txt" ]; then
  OW_LOG=warn "$bin/ow-extranet" seed-demo --config deploy/local/extranet.toml | tee "$run/demo-credentials.txt"
else
  OW_LOG=warn "$bin/ow-extranet" seed-demo --config deploy/local/extranet.toml >/dev/null
  echo "==> demo data present; staff credentials are in .run/demo-credentials.txt"
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
trap stop INT TERM

for zone in internet extranet intranet; do
  "$ferry" run --config "deploy/local/$zone.ferry.toml" 2>>"$run/$zone-ferry.log" &
  pids+=("$!")
done
"$bin/ow-internet" serve --config deploy/local/internet.toml 2>>"$run/internet.log" &
pids+=("$!")
"$bin/ow-extranet" serve --config deploy/local/extranet.toml 2>>"$run/extranet.log" &
pids+=("$!")
for _ in $(seq 1 100); do
  if "$bin/ow-internet" healthcheck --url http://127.0.0.1:8080 >/dev/null 2>&1 &&
     "$bin/ow-extranet" healthcheck --url http://127.0.0.1:8082 >/dev/null 2>&1; then
    break
  fi
  sleep 0.2
done
for pid in "${pids[@]}"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "a process failed to start; see .run/*.log" >&2
    stop
    exit 1
  fi
done

cat <<INFO
==> OneWindow local stack is running
    citizen portal (网上一窗办事平台):  http://127.0.0.1:8080/
    certificate check (证书查验):       http://127.0.0.1:8080/verify
    registrar back office (登记业务):   http://127.0.0.1:8082/   (staff: .run/demo-credentials.txt)
    logs:            .run/internet.log, .run/extranet.log, .run/<zone>-ferry.log
    send a bundle:   $ferry pack --config deploy/local/internet.ferry.toml \\
                       --channel internet-to-extranet --kind demo.hello README.md
    it lands in:     .run/extranet/inbox/internet/
    status:          $ferry status --config deploy/local/extranet.ferry.toml
    audit the log:   $ferry log verify --log .run/extranet/ferry/log/internet-to-extranet-rx \\
                       --public-key .run/keys/extranet.sign.pub
    Ctrl-C stops everything.
INFO
wait "${pids[@]}"
