#!/bin/sh
# Runs inside the systemd-nspawn root of `make test-package` (as a unit started after
# porchlight.service): records what systemd sees of porchlight, stops it, powers off.
show() {
    systemctl show porchlight -p ActiveState -p SubState -p NRestarts -p MainPID \
        -p StatusText -p WatchdogUSec
}
sleep 5
show >/probe-early.txt
if bash -c "exec 3<>/dev/tcp/127.0.0.1/$(cat /probe-web-port)" 2>/dev/null; then
    echo WebUp=yes
else
    echo WebUp=no
fi >>/probe-early.txt
sleep 40
show >/probe-late.txt
# `systemctl reload` (ExecReload: SIGHUP) rereads the certificate; the daemon lives on.
systemctl reload porchlight
echo "ReloadExit=$?" >/probe-reloaded.txt
sleep 2
show >>/probe-reloaded.txt
journalctl -u porchlight -o json --no-pager >/probe-journal.json
systemctl stop porchlight
systemctl show porchlight -p ActiveState -p Result >/probe-stopped.txt
journalctl -u porchlight --no-pager -o short-precise >/probe-journal.txt
systemctl poweroff
