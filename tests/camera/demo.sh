#!/usr/bin/env bash
# `make demo`: the simulated camera plus the daemon recording it into ./var/demo.
# Ctrl-C stops both; the newest recording is then exported to ./var/demo/latest.mp4.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD/var/demo"
bin="$PWD/target/release/porchlight"
mkdir -p "$root"
port="${DEMO_RTSP_PORT:-8554}"

/usr/bin/python3 tests/camera/rtsp_camera.py --port "$port" --scene alternating --mdns "Porchlight demo camera" >"$root/camera.log" 2>&1 &
camera_pid=$!
trap 'kill "$camera_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q '"ready"' "$root/camera.log" 2>/dev/null && break; sleep 0.2; done
grep -q '"ready"' "$root/camera.log" || { echo "the demo camera did not start:"; cat "$root/camera.log"; exit 1; }

cat >"$root/porchlight.toml" <<TOML
# Written by make demo. Recordings and the index live here; the master key beside them.
data_dir = "$root/data"
key_dir = "$root/keys"

[recording]
rollover_minutes = 1

[web]
listen = "127.0.0.1:8443"   # the demo's web UI, on this machine only

[[camera]]
name = "demo"
url = "rtsp://127.0.0.1:$port/main"
sub_url = "rtsp://127.0.0.1:$port/sub"
mode = "continuous"

[discovery]
enabled = true
interfaces = ["lo"]   # the demo camera announces itself on loopback only
TOML

cat <<MSG

Porchlight demo
  camera:     rtsp://127.0.0.1:$port/main (GStreamer test scene, 1280x720 H.264)
  config:     $root/porchlight.toml
  recordings: $root/data/recordings (encrypted; the key is in $root/keys)
  discovery:  the camera also announces itself over mDNS (on loopback): see
              https://localhost:8443/cameras/discovered

  web UI:     https://localhost:8443 — the certificate is self-signed: compare its
              SHA-256 fingerprint with the one in the log below; the first visit asks
              for the one-time setup code the log prints (also in $root/data/setup-code)

The daemon logs below. Let it record for a while, then press Ctrl-C: the demo lists
the recordings and exports the newest one to $root/latest.mp4 for any video player.

MSG
if [ -n "${DEMO_SECONDS:-}" ]; then
  # Unattended run (used to check the demo itself): record for DEMO_SECONDS, then stop.
  "$bin" serve --config "$root/porchlight.toml" &
  daemon=$!
  sleep "$DEMO_SECONDS"
  kill -TERM "$daemon"
  wait "$daemon"
else
  # Ctrl-C reaches the daemon, which finishes its open recording and exits 0.
  "$bin" serve --config "$root/porchlight.toml" || true
fi
echo
"$bin" recordings --config "$root/porchlight.toml"
newest=$("$bin" recordings --json --config "$root/porchlight.toml" | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[-1]["id"] if r else "")')
if [ -n "$newest" ]; then
  rm -f "$root/latest.mp4"
  "$bin" export --recording "$newest" --out "$root/latest.mp4" --config "$root/porchlight.toml"
  echo "Play it: ffplay $root/latest.mp4  (or open it in any video player)"
fi
