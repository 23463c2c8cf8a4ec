"""Checks `journalctl -o json` output of porchlight.service (make test-package): the
daemon's log levels arrive as journal priorities, and no `<N>` prefix is left in a
message. Usage: journal-priorities.py FILE.json"""
import json
import sys

entries = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]


def priorities(text):
    return {e.get("PRIORITY") for e in entries if text in str(e.get("MESSAGE", ""))}


checks = {
    "systemd watchdog: pinging": {"7"},  # debug
    "recording started": {"6"},  # info
}
ok = True
for text, want in checks.items():
    got = priorities(text)
    if got != want:
        print(f"journal: {text!r} has priority {got or 'none'}, want {want}", file=sys.stderr)
        ok = False
prefixed = [e["MESSAGE"] for e in entries if str(e.get("MESSAGE", "")).startswith("<")]
if prefixed:
    print(f"journal: messages still carry a <N> prefix: {prefixed[:3]}", file=sys.stderr)
    ok = False
sys.exit(0 if ok else 1)
