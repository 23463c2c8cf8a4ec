#!/usr/bin/python3
"""`make bench`: every benchmark of the project, one table, written to BENCHMARKS.md.

Runs, one after the other so they do not compete for the CPU:
  ingest   benches/ingest.py            porchlight vs `ffmpeg -c copy` on the same streams
  motion   src/motion/bench.rs          the motion task vs `ffmpeg -i SUB -f null -` decoding
  decrypt  src/store/bench.rs           store reads vs raw ChaCha20-Poly1305 in memory
  web      benches/web.rs               4 cameras + 50 HTTPS clients vs one client alone
  crash    tests/crash_loop.rs          video lost per kill -9 vs the 2 s target
Each prints lines `BENCH|group|what|porchlight|reference|ratio|target`; this script
collects them. Every ratio compares two figures measured in the same run on this
machine; nothing here is asserted. Full output of each step: target/bench/<step>.log.

Environment: BENCH_SECONDS (ingest and web run length, default 20), BENCH_COUNTS
(ingest camera counts, default 1,4), CRASH_LOOPS (default 20), SOAK_MINUTES (adds the
soak step: 4 cameras and 50 clients for that long), BENCH_ONLY (comma list of steps),
BENCH_OUT (default BENCHMARKS.md; empty = do not write).
"""

import datetime
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGS = os.path.join(ROOT, "target", "bench")
SECONDS = os.environ.get("BENCH_SECONDS", "20")
COUNTS = os.environ.get("BENCH_COUNTS", "1,4")
LOOPS = os.environ.get("CRASH_LOOPS", "20")

STEPS = [
    ("ingest", ["/usr/bin/python3", "benches/ingest.py"],
     {"BENCH_SECONDS": SECONDS, "BENCH_COUNTS": COUNTS}),
    ("motion", ["cargo", "test", "--release", "--locked", "--lib", "--",
                "--ignored", "--nocapture", "--test-threads=1", "bench_motion"], {}),
    ("decrypt", ["cargo", "test", "--release", "--locked", "--lib", "--",
                 "--ignored", "--nocapture", "--test-threads=1", "bench_decrypt"], {}),
    ("web", ["cargo", "bench", "--locked", "--bench", "web"], {"BENCH_SECONDS": SECONDS}),
    ("crash", ["cargo", "test", "--release", "--locked", "--test", "crash_loop", "--",
               "--nocapture"], {"CRASH_LOOPS": LOOPS}),
]
# The soak is 30 minutes on its own (`make soak`); included when SOAK_MINUTES is set.
if os.environ.get("SOAK_MINUTES"):
    STEPS.append(("soak", ["cargo", "bench", "--locked", "--bench", "web"],
                  {"BENCH_SOAK_MINUTES": os.environ["SOAK_MINUTES"]}))


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    except OSError:
        return "unknown"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except OSError:
        mem_kb = 0
    load = " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "?"
    return [
        f"machine: {platform.machine()}, {model}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.1f} GiB RAM"
        f" (load average at the end: {load}; anything else running competes with every figure)",
        f"system: {platform.platform()}",
        f"tools: {first_line(['rustc', '--version'])}; {first_line(['ffmpeg', '-version'])}",
        f"commit: {first_line(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'])}"
        + (" (uncommitted changes)" if first_line(['git', '-C', ROOT, 'status', '--porcelain']) != "unknown" else ""),
    ]


def run(name, cmd, env):
    os.makedirs(LOGS, exist_ok=True)
    path = os.path.join(LOGS, f"{name}.log")
    print(f"== {name}: {' '.join(cmd)} (log: {os.path.relpath(path, ROOT)})", flush=True)
    rows = []
    with open(path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(line)
            if line.startswith("BENCH|"):
                rows.append(line.rstrip("\n").split("|")[1:])
        code = proc.wait()
    if code != 0:
        rows.append([name, f"FAILED (exit {code}), see {os.path.relpath(path, ROOT)}", "", "", "", ""])
    elif not rows:
        rows.append([name, "printed no result", "", "", "", ""])
    return rows


def main():
    only = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
    steps = [s for s in STEPS if not only or s[0] in only]
    subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    rows = []
    for name, cmd, env in steps:
        rows.extend(run(name, cmd, env))

    lines = [f"# Porchlight benchmarks", "",
             f"Made by `make bench` (benches/all.py) on {started:%Y-%m-%d %H:%M} UTC with "
             f"BENCH_SECONDS={SECONDS} BENCH_COUNTS={COUNTS} CRASH_LOOPS={LOOPS}"
             + (f" SOAK_MINUTES={os.environ['SOAK_MINUTES']}" if os.environ.get("SOAK_MINUTES") else "") + ".", ""]
    lines += [f"- {m}" for m in machine()]
    lines += ["", "Every ratio compares two figures measured in the same run on this machine "
              "(lower is better except for decrypt, where 1.00× is the raw cipher's speed).", "",
              "| benchmark | what | Porchlight | reference (same run) | ratio | target |",
              "|---|---|---:|---:|---:|---|"]
    for r in rows:
        r = (r + [""] * 6)[:6]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    out = os.environ.get("BENCH_OUT", "BENCHMARKS.md")
    if out:
        with open(os.path.join(ROOT, out), "w") as f:
            f.write(text)
        print(f"written to {out}")


if __name__ == "__main__":
    sys.exit(main())
