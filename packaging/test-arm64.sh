#!/usr/bin/env bash
# make test-arm64: the cross-built arm64 binary, run under qemu-aarch64-static with the
# arm64 libraries installed by multiarch (binfmt is not assumed: qemu is called
# explicitly). Checks `porchlight version`, then records the test camera (on the host)
# for a few seconds, lists the recording, exports it, and has the host's ffprobe
# decode the export.
#
# Usage: packaging/test-arm64.sh target/aarch64-unknown-linux-gnu/release/porchlight
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:?usage: $0 path/to/arm64/porchlight}
QEMU=${QEMU:-qemu-aarch64-static}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
WORK=$(mktemp -d /tmp/porchlight-arm64.XXXXXX)

passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() {
    echo "FAILED: $*" >&2
    echo "test-arm64: $passed passed, 1 failed"
    exit 1
}

camera_pid=""
daemon_pid=""
cleanup() {
    [ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null || true
    [ -n "$camera_pid" ] && kill -TERM "$camera_pid" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

file -L "$BIN" | grep -q 'ARM aarch64' || fail "$BIN is not an aarch64 executable: $(file -L "$BIN")"
out=$("$QEMU" "$BIN" version) || fail "$QEMU $BIN version"
[ "$out" = "porchlight $VERSION" ] || fail "version printed '$out'"
ok "arm64 binary under $QEMU: $out"

/usr/bin/python3 tests/camera/rtsp_camera.py --port 0 --exit-with-parent >"$WORK/camera.out" 2>"$WORK/camera.err" &
camera_pid=$!
for _ in $(seq 100); do grep -q '"ready"' "$WORK/camera.out" && break; sleep 0.2; done
port=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["port"])' "$WORK/camera.out") \
    || { cat "$WORK/camera.err"; fail "test camera did not start"; }
cat >"$WORK/porchlight.toml" <<EOF
data_dir = "$WORK/data"
key_dir = "$WORK/keys"
[[camera]]
name = "porch"
url = "rtsp://127.0.0.1:$port/main"
mode = "continuous"
EOF
cli() { "$QEMU" "$BIN" "$@" --config "$WORK/porchlight.toml"; }

PORCHLIGHT_LOG=info "$QEMU" "$BIN" serve --config "$WORK/porchlight.toml" >"$WORK/serve.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 600); do grep -q 'recording started' "$WORK/serve.log" && break; kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
grep -q 'recording started' "$WORK/serve.log" || { cat "$WORK/serve.log"; fail "no recording started within 60 s"; }
sleep 5
kill -TERM "$daemon_pid"
wait "$daemon_pid" || { cat "$WORK/serve.log"; fail "serve did not exit cleanly on SIGTERM"; }
daemon_pid=""
ok "arm64 serve recorded the test camera and stopped on SIGTERM"

cli recordings --json >"$WORK/recordings.json" || fail "recordings --json"
id=$(python3 -c 'import json,sys; print([x for x in json.load(open(sys.argv[1])) if x["frames"]>0][0]["id"])' "$WORK/recordings.json") \
    || { cat "$WORK/recordings.json"; fail "no recording with frames"; }
cli check >/dev/null || fail "check"
cli export --recording "$id" --out "$WORK/export.mp4" >/dev/null || fail "export"
frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$WORK/export.mp4")
[ "${frames:-0}" -ge 10 ] || fail "export decodes to ${frames:-0} frames"
errors=$(ffmpeg -v error -nostdin -i "$WORK/export.mp4" -f null - 2>&1)
[ -z "$errors" ] || fail "ffmpeg reports decode errors: $errors"
ok "recording $id exported by the arm64 binary plays on the host ($frames frames, no decode errors)"

echo "test-arm64: $passed passed, 0 failed"
