#!/usr/bin/env bash
# make test-package: the amd64 .deb in a throw-away Debian root, as an installer uses it.
#
#   install (apt resolves the automatic Depends from the archive) → user, directories,
#   modes, conffile, unit → `porchlight check` → `porchlight serve` as the porchlight
#   user against the test camera (running on the host; the chroot shares its network)
#   with the camera added to the installed conffile → a recording that exports and
#   plays → upgrade to a higher version built from the same tree: edited conffile,
#   key and recordings survive → remove keeps the data → purge deletes it. Then a
#   second root with systemd, booted with systemd-nspawn: the unit in its full sandbox,
#   Type=notify, the watchdog over more than WatchdogSec, journal priorities, stop.
#
# The root is `debootstrap --variant=minbase` of this machine's Debian release (the
# package's Depends name this release's libraries), cached in target/package-test/base;
# each run works on a fresh copy. Downloaded .debs are cached in
# target/package-test/apt-archives. Needs root (debootstrap, chroot, mount).
#
# Usage: packaging/test-package.sh target/debian/porchlight_<version>_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."

DEB=${1:?usage: $0 path/to/porchlight_VERSION_amd64.deb}
WORK=target/package-test
BASE=$WORK/base
ROOT=$WORK/root
ARCHIVES=$WORK/apt-archives
[ -f "$DEB" ] || { echo "no package $DEB: run make deb first" >&2; exit 1; }
VERSION=$(dpkg-deb -f "$DEB" Version)
UPGRADE_VERSION="$VERSION+upgradetest1"
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$SUITE" ] || { echo "cannot tell this machine's Debian release" >&2; exit 1; }
MIRROR=${DEBOOTSTRAP_MIRROR:-http://deb.debian.org/debian}

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() {
    failed=$((failed + 1))
    echo "FAILED: $*" >&2
    echo "test-package: $passed passed, $failed failed"
    exit 1
}
in_root() { chroot "$ROOT" "$@"; }
# Numeric ids: chroot(1) would look names up in this machine's user database.
as_porchlight() { chroot --userspec="$uid:$gid" "$ROOT" "$@"; }
uid=""
gid=""

[ "$(id -u)" = 0 ] || { echo "test-package needs root (debootstrap, chroot, mount)" >&2; exit 1; }
for tool in debootstrap ffprobe; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install debootstrap ffmpeg)" >&2; exit 1; }
done

camera_pid=""
daemon_pid=""
cleanup() {
    [ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null || true
    [ -n "$camera_pid" ] && kill -TERM "$camera_pid" 2>/dev/null || true
    for m in "$ROOT/var/cache/apt/archives" "$ROOT/proc" "$WORK/nspawn/var/cache/apt/archives"; do
        mountpoint -q "$m" && umount "$m" || true
    done
}
trap cleanup EXIT

# --- The root: cached pristine debootstrap, fresh copy per run -------------------
mkdir -p "$WORK" "$ARCHIVES/partial"
if [ ! -e "$BASE/.porchlight-complete" ]; then
    echo "debootstrap $SUITE (minbase) from $MIRROR into $BASE (cached for later runs)"
    rm -rf "$BASE" "$BASE.tmp"
    debootstrap --variant=minbase "$SUITE" "$BASE.tmp" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap $SUITE"; }
    touch "$BASE.tmp/.porchlight-complete"
    mv "$BASE.tmp" "$BASE"
fi
for m in "$ROOT/var/cache/apt/archives" "$ROOT/proc"; do
    mountpoint -q "$m" && umount "$m"
done
rm -rf "$ROOT"
cp -a "$BASE" "$ROOT"
# The same archive (and security updates) as this machine, so Depends resolve as they
# would on an installer's machine of this release.
rm -f "$ROOT/etc/apt/sources.list"
cp -a /etc/apt/sources.list.d/. "$ROOT/etc/apt/sources.list.d/"
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$ROOT/etc/apt/sources.list"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount -t proc proc "$ROOT/proc"
mount --bind "$ARCHIVES" "$ROOT/var/cache/apt/archives"
# No service is started inside the root (there is no systemd there anyway).
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
echo "root ready: $ROOT ($SUITE)"

# --- The upgrade package: same tree, higher version --------------------------------
# (cargo deb deletes other versions' .debs from target/debian/ when it runs, so the
# package under test is put back afterwards.)
cp "$DEB" "$ROOT/tmp/porchlight.deb"
UPGRADE_DIR=$WORK/upgrade
rm -rf "$UPGRADE_DIR" && mkdir -p "$UPGRADE_DIR"
cargo deb --no-build --deb-version "$UPGRADE_VERSION" --output "$UPGRADE_DIR/" >/dev/null
[ -f "$DEB" ] || cp "$ROOT/tmp/porchlight.deb" "$DEB"
UPGRADE_DEB=$(ls "$UPGRADE_DIR"/*.deb)
[ "$(dpkg-deb -f "$UPGRADE_DEB" Version)" = "$UPGRADE_VERSION" ] || fail "upgrade package version"
dpkg --compare-versions "$UPGRADE_VERSION" gt "$VERSION" || fail "$UPGRADE_VERSION is not newer than $VERSION"
cp "$UPGRADE_DEB" "$ROOT/tmp/porchlight-upgrade.deb"

# --- Install ------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
in_root apt-get update -q >"$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log"; fail "apt-get update in the root"; }
in_root apt-get install -y -q --no-install-recommends /tmp/porchlight.deb </dev/null >"$WORK/install.log" 2>&1 \
    || { tail -30 "$WORK/install.log"; fail "apt install ./porchlight_${VERSION}_amd64.deb"; }
ok "apt install of $(basename "$DEB") resolves its Depends ($(dpkg-deb -f "$ROOT/tmp/porchlight.deb" Depends))"

[ "$(in_root dpkg-query -W -f='${Version}' porchlight)" = "$VERSION" ] || fail "installed version"
# The binary prints the upstream version: the Debian one without its revision.
[ "$(in_root porchlight version)" = "porchlight ${VERSION%-*}" ] || fail "porchlight version printed '$(in_root porchlight version)'"
ok "porchlight version prints ${VERSION%-*}"

IFS=: read -r _ _ uid _ _ home shell < <(in_root getent passwd porchlight) || fail "no porchlight user"
[ "$uid" -lt 1000 ] || fail "porchlight is not a system user (uid $uid)"
[ "$shell" = /usr/sbin/nologin ] || fail "porchlight's shell is $shell"
gid=$(in_root getent group porchlight | cut -d: -f3) || fail "no porchlight group"
[ "$(in_root id -g porchlight)" = "$gid" ] || fail "porchlight's primary group is not porchlight"
ok "system user porchlight (uid $uid, home $home, shell $shell) and group"

stat_of() { in_root stat -c '%U:%G %a' "$1"; }
[ "$(stat_of /var/lib/porchlight)" = "porchlight:porchlight 700" ] || fail "/var/lib/porchlight is $(stat_of /var/lib/porchlight)"
[ "$(stat_of /var/lib/porchlight/keys)" = "porchlight:porchlight 700" ] || fail "keys dir is $(stat_of /var/lib/porchlight/keys)"
[ "$(stat_of /etc/porchlight/porchlight.toml)" = "root:porchlight 640" ] || fail "config is $(stat_of /etc/porchlight/porchlight.toml)"
ok "/var/lib/porchlight and keys/ porchlight 0700; config root:porchlight 0640"

in_root dpkg-query -W -f='${Conffiles}\n' porchlight | grep -q '^ /etc/porchlight/porchlight.toml ' \
    || fail "/etc/porchlight/porchlight.toml is not a conffile"
unit=$(in_root dpkg -L porchlight | grep '/systemd/system/porchlight.service$') || fail "no unit in the package"
in_root grep -q '^Type=notify' "$unit" || fail "unit $unit is not Type=notify"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/porchlight.service" ] || fail "unit not enabled"
ok "conffile, unit $unit, enabled for multi-user.target"

# First start, as systemd does right after installing: with the packaged config (no
# cameras) it creates the master key and the store. (Before any start, `check` refuses
# by design: a missing key is never silently replaced, since recordings need it.)
serve_log=$WORK/serve-first.log
chroot --userspec="$uid:$gid" "$ROOT" env PORCHLIGHT_LOG=info porchlight serve >"$serve_log" 2>&1 &
daemon_pid=$!
# Start-up is over once the web UI is up (or has given up: port 8443 may be taken on
# this machine, which the chroot shares); SIGTERM before then finds no handler yet.
STARTED='web UI listening on https://|recording continues without the web UI'
for _ in $(seq 300); do grep -Eq "$STARTED" "$serve_log" && break; kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
grep -Eq "$STARTED" "$serve_log" || { cat "$serve_log"; fail "first start with the packaged config"; }
kill -TERM "$daemon_pid"
wait "$daemon_pid" || { cat "$serve_log"; fail "first start: serve did not exit cleanly on SIGTERM"; }
daemon_pid=""
key_mode=$(stat_of /var/lib/porchlight/keys/master.key) || fail "no master key after the first start"
[ "$key_mode" = "porchlight:porchlight 600" ] || fail "master.key is $key_mode"
ok "first start with the packaged config (no cameras) creates master.key, porchlight 0600"
as_porchlight porchlight check >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log"; fail "porchlight check on the default config"; }
ok "porchlight check passes on the packaged default config (no cameras)"

# --- Record from the test camera -----------------------------------------------------
camera_out=$WORK/camera.out
/usr/bin/python3 tests/camera/rtsp_camera.py --port 0 --exit-with-parent >"$camera_out" 2>"$WORK/camera.err" &
camera_pid=$!
for _ in $(seq 100); do grep -q '"ready"' "$camera_out" && break; sleep 0.2; done
port=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["port"])' "$camera_out") \
    || { cat "$WORK/camera.err"; fail "test camera did not start"; }
cat >>"$ROOT/etc/porchlight/porchlight.toml" <<EOF

# Added by test-package: it must survive the upgrade.
[[camera]]
name = "porch"
url = "rtsp://127.0.0.1:$port/main"
mode = "continuous"
EOF
as_porchlight porchlight check >/dev/null 2>&1 || fail "check with the camera added"

serve_log=$WORK/serve.log
chroot --userspec="$uid:$gid" "$ROOT" env PORCHLIGHT_LOG=info porchlight serve >"$serve_log" 2>&1 &
daemon_pid=$!
for _ in $(seq 300); do
    grep -q 'recording started' "$serve_log" && grep -Eq "$STARTED" "$serve_log" && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q 'recording started' "$serve_log" || { cat "$serve_log"; fail "no recording started within 30 s"; }
grep -Eq "$STARTED" "$serve_log" || { cat "$serve_log"; fail "start-up did not finish within 30 s"; }
sleep 4
kill -TERM "$daemon_pid"
wait "$daemon_pid" || { cat "$serve_log"; fail "serve did not exit cleanly on SIGTERM"; }
daemon_pid=""
ok "porchlight serve as porchlight recorded the test camera and stopped on SIGTERM"

recordings_json() { as_porchlight porchlight recordings --json; }
recordings_json >"$WORK/recordings-before.json" || fail "recordings --json"
count=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(1 for x in r if x["camera"]=="porch" and x["frames"]>0))' "$WORK/recordings-before.json")
[ "$count" -ge 1 ] || { cat "$WORK/recordings-before.json"; fail "no recording with frames"; }
ok "$count recording(s) of camera porch listed"
key_sum=$(sha256sum <"$ROOT/var/lib/porchlight/keys/master.key")

# --- Upgrade -------------------------------------------------------------------------
in_root apt-get install -y -q --no-install-recommends /tmp/porchlight-upgrade.deb </dev/null >"$WORK/upgrade.log" 2>&1 \
    || { tail -30 "$WORK/upgrade.log"; fail "upgrade to $UPGRADE_VERSION"; }
[ "$(in_root dpkg-query -W -f='${Version}' porchlight)" = "$UPGRADE_VERSION" ] || fail "version after upgrade"
grep -q "^url = \"rtsp://127.0.0.1:$port/main\"" "$ROOT/etc/porchlight/porchlight.toml" || fail "edited conffile lost in the upgrade"
[ ! -e "$ROOT/etc/porchlight/porchlight.toml.dpkg-new" ] || fail "upgrade left porchlight.toml.dpkg-new"
[ "$(stat_of /etc/porchlight/porchlight.toml)" = "root:porchlight 640" ] || fail "config mode after upgrade: $(stat_of /etc/porchlight/porchlight.toml)"
ok "upgraded to $UPGRADE_VERSION; the edited conffile (and its mode) survived"
[ "$(sha256sum <"$ROOT/var/lib/porchlight/keys/master.key")" = "$key_sum" ] || fail "master key changed in the upgrade"
recordings_json >"$WORK/recordings-after.json" || fail "recordings --json after upgrade"
cmp -s "$WORK/recordings-before.json" "$WORK/recordings-after.json" || fail "recordings changed in the upgrade"
as_porchlight porchlight check >"$WORK/check-after.log" 2>&1 || { cat "$WORK/check-after.log"; fail "check after upgrade"; }
id=$(python3 -c 'import json,sys; print([x for x in json.load(open(sys.argv[1])) if x["frames"]>0][0]["id"])' "$WORK/recordings-after.json")
rm -f "$ROOT/tmp/export.mp4"
as_porchlight porchlight export --recording "$id" --out /tmp/export.mp4 >/dev/null || fail "export after upgrade"
frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$ROOT/tmp/export.mp4")
[ "${frames:-0}" -ge 10 ] || fail "exported recording decodes to ${frames:-0} frames"
ok "key, recordings and index survived; recording $id exports and plays ($frames frames)"

# --- Remove keeps data; purge deletes it -------------------------------------------
in_root apt-get remove -y -q porchlight </dev/null >"$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log"; fail "remove"; }
[ ! -e "$ROOT/usr/bin/porchlight" ] || fail "binary still there after remove"
[ -f "$ROOT/var/lib/porchlight/keys/master.key" ] || fail "remove deleted the key"
[ -n "$(ls -A "$ROOT/var/lib/porchlight/recordings/porch")" ] || fail "remove deleted recordings"
[ -f "$ROOT/etc/porchlight/porchlight.toml" ] || fail "remove deleted the config"
grep -q "kept in /var/lib/porchlight" "$WORK/remove.log" || fail "remove did not say the data is kept"
[ "$(stat_of /var/lib/porchlight-package)" = "root:root 700" ] || fail "purge note dir is $(stat_of /var/lib/porchlight-package)"
ok "remove keeps recordings, key and config, and says so"

in_root dpkg --purge porchlight >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; fail "purge"; }
grep -q "WARNING: purge deletes /var/lib/porchlight" "$WORK/purge.log" || { cat "$WORK/purge.log"; fail "purge gave no warning"; }
[ ! -e "$ROOT/var/lib/porchlight" ] || fail "purge left /var/lib/porchlight"
[ ! -e "$ROOT/var/lib/porchlight-package" ] || fail "purge left /var/lib/porchlight-package"
[ ! -e "$ROOT/etc/porchlight/porchlight.toml" ] || fail "purge left the config"
! in_root dpkg-statoverride --list /etc/porchlight/porchlight.toml >/dev/null || fail "purge left the statoverride"
[ ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/porchlight.service" ] || fail "purge left the unit enabled"
ok "purge warned, then deleted /var/lib/porchlight, the config and the unit's enablement"

# data_dir moved to another disk, key_dir left at its default: purge must keep that key
# (without it the other disk's recordings are unreadable for ever) and say so.
in_root apt-get install -y -q --no-install-recommends /tmp/porchlight.deb </dev/null >"$WORK/reinstall.log" 2>&1 \
    || { tail -30 "$WORK/reinstall.log"; fail "reinstall after purge"; }
sed -i 's|^data_dir = .*|data_dir = "/srv/porchlight-data"|' "$ROOT/etc/porchlight/porchlight.toml"
grep -q '^key_dir = "/var/lib/porchlight/keys"' "$ROOT/etc/porchlight/porchlight.toml" || fail "packaged key_dir"
in_root install -d -o porchlight -g porchlight -m 0700 /srv/porchlight-data/recordings/porch
head -c 32 /dev/urandom >"$ROOT/var/lib/porchlight/keys/master.key"
echo recording >"$ROOT/srv/porchlight-data/recordings/porch/00000000000000b2.plr"
mkdir -p "$ROOT/var/lib/porchlight/index" && echo old >"$ROOT/var/lib/porchlight/index/db"
moved_key_sum=$(sha256sum <"$ROOT/var/lib/porchlight/keys/master.key")
in_root apt-get purge -y -q porchlight </dev/null >"$WORK/purge-moved.log" 2>&1 || { cat "$WORK/purge-moved.log"; fail "purge with data_dir moved"; }
[ "$(sha256sum <"$ROOT/var/lib/porchlight/keys/master.key" 2>/dev/null)" = "$moved_key_sum" ] \
    || { cat "$WORK/purge-moved.log"; fail "purge deleted the key of recordings in /srv/porchlight-data"; }
[ -f "$ROOT/srv/porchlight-data/recordings/porch/00000000000000b2.plr" ] || fail "purge touched /srv/porchlight-data"
[ ! -e "$ROOT/var/lib/porchlight/index" ] || fail "purge left the default index"
grep -q "kept /var/lib/porchlight/keys: it holds a master key" "$WORK/purge-moved.log" || { cat "$WORK/purge-moved.log"; fail "purge did not say what it kept"; }
grep -q "kept /srv/porchlight-data (configured outside" "$WORK/purge-moved.log" || { cat "$WORK/purge-moved.log"; fail "purge did not name the data_dir kept"; }
ok "purge with data_dir moved elsewhere kept its master key in /var/lib/porchlight/keys and said so"

# --- Under a real systemd: the unit's sandbox, Type=notify and the watchdog ---------
# A second root (the cached base plus systemd and the package) booted with
# systemd-nspawn; a probe unit inside records what systemd sees, then powers off.
NSPAWN=$WORK/nspawn
for m in "$NSPAWN/var/cache/apt/archives" "$ROOT/var/cache/apt/archives" "$ROOT/proc"; do
    mountpoint -q "$m" && umount "$m"
done
rm -rf "$NSPAWN"
cp -a "$BASE" "$NSPAWN"
rm -f "$NSPAWN/etc/apt/sources.list"
cp -a /etc/apt/sources.list.d/. "$NSPAWN/etc/apt/sources.list.d/"
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$NSPAWN/etc/apt/sources.list"
cp /etc/resolv.conf "$NSPAWN/etc/resolv.conf"
cp "$ROOT/tmp/porchlight.deb" "$NSPAWN/tmp/porchlight.deb"
mount --bind "$ARCHIVES" "$NSPAWN/var/cache/apt/archives"
{ chroot "$NSPAWN" apt-get update -q &&
  chroot "$NSPAWN" apt-get install -y -q --no-install-recommends systemd /tmp/porchlight.deb </dev/null; } \
    >"$WORK/nspawn-install.log" 2>&1 || { tail -30 "$WORK/nspawn-install.log"; fail "installing systemd and the package in $NSPAWN"; }
umount "$NSPAWN/var/cache/apt/archives"
# The web UI on a free loopback port (the container shares this machine's network).
webport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '\n[web]\nlisten = "127.0.0.1:%s"\n\n[[camera]]\nname = "porch"\nurl = "rtsp://127.0.0.1:%s/main"\nmode = "continuous"\n' \
    "$webport" "$port" >>"$NSPAWN/etc/porchlight/porchlight.toml"
echo "$webport" >"$NSPAWN/probe-web-port"
mkdir -p "$NSPAWN/etc/systemd/system/porchlight.service.d"
printf '[Service]\nEnvironment=PORCHLIGHT_LOG=info,porchlight::notify=debug\n' \
    >"$NSPAWN/etc/systemd/system/porchlight.service.d/test.conf"
# Watched for longer than WatchdogSec (30 s), so a missing ping would show as a restart.
cp packaging/nspawn-probe.sh "$NSPAWN/usr/local/bin/porchlight-probe"
chmod 755 "$NSPAWN/usr/local/bin/porchlight-probe"
printf '[Unit]\nAfter=porchlight.service\n[Service]\nExecStart=/usr/local/bin/porchlight-probe\n[Install]\nWantedBy=multi-user.target\n' \
    >"$NSPAWN/etc/systemd/system/porchlight-probe.service"
ln -sf /etc/systemd/system/porchlight-probe.service "$NSPAWN/etc/systemd/system/multi-user.target.wants/"
# --register=no --keep-unit: no machined or D-Bus needed on this machine.
timeout 180 systemd-nspawn -q -b -D "$NSPAWN" --register=no --keep-unit --console=pipe \
    >"$WORK/nspawn-boot.log" 2>&1 </dev/null || true
[ -f "$NSPAWN/probe-stopped.txt" ] || { tail -30 "$WORK/nspawn-boot.log"; fail "systemd-nspawn boot: the probe did not finish"; }
prop() { sed -n "s/^$2=//p" "$NSPAWN/$1"; }
[ "$(prop probe-early.txt ActiveState)/$(prop probe-early.txt SubState)" = "active/running" ] \
    || { cat "$NSPAWN/probe-journal.txt"; fail "porchlight.service not running under systemd: $(cat "$NSPAWN/probe-early.txt")"; }
[ "$(prop probe-early.txt StatusText)" = "serving 1 camera(s)" ] || fail "no READY/STATUS from the daemon: $(cat "$NSPAWN/probe-early.txt")"
[ "$(prop probe-early.txt WatchdogUSec)" = "30s" ] || fail "watchdog not armed: $(cat "$NSPAWN/probe-early.txt")"
ok "under systemd, in the full sandbox: Type=notify service active, status '$(prop probe-early.txt StatusText)'"
{ [ "$(prop probe-late.txt MainPID)" = "$(prop probe-early.txt MainPID)" ] &&
  [ "$(prop probe-late.txt NRestarts)" = 0 ] && [ "$(prop probe-late.txt ActiveState)" = active ]; } \
    || { cat "$NSPAWN/probe-journal.txt"; fail "restarted or stopped within 45 s: $(cat "$NSPAWN/probe-late.txt")"; }
ok "same process after 45 s (> WatchdogSec=30s), no restart: the watchdog pings are accepted"
{ [ "$(prop probe-reloaded.txt ReloadExit)" = 0 ] && [ "$(prop probe-reloaded.txt ActiveState)" = active ] &&
  [ "$(prop probe-reloaded.txt MainPID)" = "$(prop probe-early.txt MainPID)" ] &&
  grep -q "HTTPS certificate unchanged" "$NSPAWN/probe-journal.txt"; } \
    || { cat "$NSPAWN/probe-journal.txt"; fail "systemctl reload: $(cat "$NSPAWN/probe-reloaded.txt")"; }
ok "systemctl reload: the same process reread its certificate (unchanged) and kept running"
[ "$(prop probe-early.txt WebUp)" = yes ] && grep -q "web UI listening on https://127.0.0.1:$webport/" "$NSPAWN/probe-journal.txt" \
    || { cat "$NSPAWN/probe-journal.txt"; fail "web UI not listening on 127.0.0.1:$webport under systemd"; }
[ -n "$(ls -A "$NSPAWN/var/lib/porchlight/web" 2>/dev/null)" ] || fail "no self-signed certificate in /var/lib/porchlight/web"
ok "web UI up in the sandbox: HTTPS on 127.0.0.1:$webport accepts connections, certificate made in the state dir"
grep -q 'recording started' "$NSPAWN/probe-journal.txt" || { cat "$NSPAWN/probe-journal.txt"; fail "no recording under systemd"; }
python3 packaging/journal-priorities.py "$NSPAWN/probe-journal.json" || fail "journal priorities"
ok "journal priorities follow the daemon's levels (debug 7, info 6)"
{ [ "$(prop probe-stopped.txt Result)" = success ] && [ "$(prop probe-stopped.txt ActiveState)" = inactive ]; } \
    || fail "systemctl stop: $(cat "$NSPAWN/probe-stopped.txt")"
grep -q 'recording finished' "$NSPAWN/probe-journal.txt" || fail "stop did not finish the open recording"
ls "$NSPAWN"/var/lib/porchlight/recordings/porch/*.plr >/dev/null 2>&1 || fail "no recording file under systemd"
ok "systemctl stop: open recording finished, clean exit"

echo "test-package: $passed passed, $failed failed"
