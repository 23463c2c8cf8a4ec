#!/usr/bin/python3
"""make bench-ingest: Porchlight's recording cost beside ffmpeg's, on the same streams.

For 1, 4 and 8 copies of the test camera's main stream, record for BENCH_SECONDS
(default 60) with `porchlight serve` (continuous mode: ingest, fMP4, sealing, fsync)
and then with N `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment` processes,
and print CPU seconds per stream-minute and peak RSS for both, with the ratios.
Both run against the same shared camera pipeline (`--shared`), so the camera's own
encoding cost is the same for both and is not counted (it is another process).

CPU is the threads' time on a CPU from /proc/PID/task/*/schedstat (ns resolution),
sampled after a warm-up, so start-up work is excluded; peak RSS is VmHWM from
/proc/PID/status. Below the table, each run's CPU and context switches per thread
name, for both programs: on a small machine wake-ups, not bytes, are what recording
costs. Nothing is asserted.
"""

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# PORCHLIGHT_BIN: another build to compare (an A/B of a change).
BIN = os.environ.get("PORCHLIGHT_BIN", os.path.join(ROOT, "target", "release", "porchlight"))
CAMERA = os.path.join(ROOT, "tests", "camera", "rtsp_camera.py")
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
COUNTS = [int(n) for n in os.environ.get("BENCH_COUNTS", "1,4,8").split(",")]
WARMUP = 4.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """CPU time of all live threads of `pid`, in ns resolution from schedstat.

    utime+stime in /proc/PID/stat count 10 ms ticks: one camera at 720p costs a few
    ms of CPU a second, so a 20 s run would be a handful of ticks. schedstat's first
    field is the thread's time on a CPU in ns. Threads that exit during the run take
    their time with them; neither program starts or ends threads while streaming.
    """
    total = 0.0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9
        return total
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_camera(realistic):
    args = ["/usr/bin/python3", CAMERA, "--port", "0", "--scene", "alternating", "--shared", "--exit-with-parent"]
    if realistic:
        args.append("--realistic")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready = json.loads(proc.stdout.readline())
    return proc, f"rtsp://127.0.0.1:{ready['port']}/main"


def thread_stats(pid):
    """Per thread: (name without trailing digits, CPU s, context switches)."""
    stats = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip().rstrip("0123456789-") or "?"
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                cpu = int(f.read().split()[0]) / 1e9
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                switches = sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
            stats[(pid, tid)] = (name, cpu, switches)
        except (OSError, ValueError, IndexError):
            pass  # the thread ended meanwhile
    return stats


def by_thread_group(before, after):
    """Where the time went: per thread name, [threads, CPU s/s, switches/s].

    A context switch is mostly a wake-up of a sleeping thread, which costs far more
    than the work it brings on a small machine: the figure to watch besides CPU.
    """
    groups = {}
    for key, (name, cpu, switches) in after.items():
        _, cpu0, switches0 = before.get(key, (name, 0.0, 0))
        g = groups.setdefault(name, [0, 0.0, 0.0])
        g[0] += 1
        g[1] += (cpu - cpu0) / SECONDS
        g[2] += (switches - switches0) / SECONDS
    return groups


def describe(groups):
    parts = sorted(groups.items(), key=lambda item: -item[1][1])
    total_cpu = sum(g[1] for g in groups.values())
    total_switches = sum(g[2] for g in groups.values())
    text = ", ".join(f"{name} ×{n} {cpu * 1e3:.2f} ms/s {sw:.0f}/s" for name, (n, cpu, sw) in parts)
    return f"{total_cpu * 1e3:.2f} ms CPU/s, {total_switches:.0f} switches/s: {text}"


def measure(pids):
    time.sleep(WARMUP)
    before = sum(cpu_seconds(p) for p in pids)
    threads_before = {k: v for p in pids for k, v in thread_stats(p).items()}
    time.sleep(SECONDS)
    after = sum(cpu_seconds(p) for p in pids)
    threads_after = {k: v for p in pids for k, v in thread_stats(p).items()}
    rss = sum(peak_rss_mb(p) for p in pids)
    return after - before, rss, by_thread_group(threads_before, threads_after)


def run_porchlight(url, n, work):
    config = os.path.join(work, "porchlight.toml")
    with open(config, "w") as f:
        f.write(f'data_dir = "{work}/data"\nkey_dir = "{work}/keys"\n')
        for i in range(n):
            # Motion detection off: it decodes video, which is its own benchmark
            # (make bench-motion); this one measures ingest, fMP4, sealing and fsync.
            f.write(f'[[camera]]\nname = "cam{i}"\nurl = "{url}"\nmode = "continuous"\nmotion = false\n')
    log = open(os.path.join(work, "daemon.log"), "w")
    proc = subprocess.Popen([BIN, "serve", "--config", config], stderr=log, stdout=subprocess.DEVNULL)
    try:
        cpu, rss, groups = measure([proc.pid])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    started = open(os.path.join(work, "daemon.log")).read().count("recording started")
    if started < n:
        print(f"  warning: only {started} of {n} cameras recorded", file=sys.stderr)
    return cpu, rss, groups


def run_ffmpeg(url, n, work):
    procs = []
    for i in range(n):
        out = os.path.join(work, f"ff{i}_%03d.mp4")
        procs.append(subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url,
             "-c", "copy", "-f", "segment", "-segment_time", "600", "-reset_timestamps", "1", out],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        cpu, rss, groups = measure([p.pid for p in procs])
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait(timeout=30)
    return cpu, rss, groups


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `cargo build --release` first (make bench-ingest does)")
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"# bench-ingest on {platform.node()}: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.platform()}")
    print(f"# {ffmpeg_version}; {SECONDS:.0f} s per run after {WARMUP:.0f} s warm-up")
    print()
    print("| stream | cameras | porchlight CPU s/stream-min | ffmpeg CPU s/stream-min | CPU ratio | porchlight peak RSS MB | target RSS MB | ffmpeg RSS MB (sum) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    breakdowns = []
    for realistic in (False, True):
        camera, url = start_camera(realistic)
        label = "1080p High ≈4.7 Mbit/s" if realistic else "720p test pattern"
        try:
            for n in COUNTS:
                work = tempfile.mkdtemp(prefix="porchlight-bench-")
                try:
                    ours, ours_rss, ours_threads = run_porchlight(url, n, work)
                    theirs, theirs_rss, theirs_threads = run_ffmpeg(url, n, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                minutes = n * SECONDS / 60
                ratio = (ours / theirs) if theirs > 0 else float("nan")
                print(f"| {label} | {n} | {ours / minutes:.3f} | {theirs / minutes:.3f} | {ratio:.2f}× | "
                      f"{ours_rss:.1f} | {40 + 4 * n} | {theirs_rss:.1f} |", flush=True)
                what = f"{label}, {n} camera{'s' if n > 1 else ''}"
                breakdowns.append(f"- {what}: porchlight {describe(ours_threads)}; "
                                  f"ffmpeg {describe(theirs_threads)}")
                # Machine-readable lines for `make bench` (benches/all.py).
                print(f"BENCH|ingest CPU vs ffmpeg -c copy|{what}|{ours / minutes:.3f} CPU s/stream-min|"
                      f"{theirs / minutes:.3f} CPU s/stream-min|{ratio:.2f}×|≤ 0.50×", flush=True)
                print(f"BENCH|ingest peak RSS vs ffmpeg|{what}|{ours_rss:.1f} MB|{theirs_rss:.1f} MB|"
                      f"{ours_rss / theirs_rss if theirs_rss else float('nan'):.2f}×|≤ {40 + 4 * n} MB", flush=True)
        finally:
            camera.terminate()
            camera.wait(timeout=10)
    print("\nPer thread (CPU and context switches a second, by thread name):")
    for line in breakdowns:
        print(line)


if __name__ == "__main__":
    main()
