#!/usr/bin/env python3
"""A deliberately malicious RTSP "camera" for Porchlight's hardening tests.

No real server misbehaves on purpose, so this one is hand-written on plain
sockets (any python3; no GStreamer). It answers every connection with the
one misbehaviour named on the command line:

    python3 tests/camera/hostile_rtsp.py MODE [--port P] [--exit-with-parent]

Modes (see README.md next to this file):

- garbage          answers the first request with random binary bytes, then closes
- endless-headers  a 200 status line, then header lines forever, never the blank line
- huge-length      a 200 with Content-Length: 4000000000, then body bytes forever
- lf-only          a status line that never ends: "RTSP/1.0 200 ", then
                   "a"*1000 + "\n\n" forever (bare LFs; retina ends lines at CRLF only)
- giant-sps        a valid-looking DESCRIBE whose SDP carries a ~1 MiB SPS in
                   sprop-parameter-sets
- rtp-garbage      a valid DESCRIBE/SETUP/PLAY (a real 1280x720 SPS/PPS), then
                   interleaved frames declaring 65535-byte lengths filled with
                   junk, frames on unassigned channels and non-'$' garbage
- endless-au       a valid handshake, then RTP packets (fixed SSRC, consecutive
                   sequence numbers, mark set, rising timestamps) each holding one
                   ~60 KB SEI NAL, forever: retina never ends an access unit on an SEI,
                   so all of it piles up in one frame
- rtcp-stall       a valid handshake, one IDR keyframe, then only RTCP sender
                   reports, one a second: a frozen encoder behind a live server
- no-keyframe      a valid handshake, then non-IDR slices (10 a second), never a
                   keyframe

On start-up, once the port is bound, it prints one JSON line on stdout:
{"event": "ready", "port": P, "mode": MODE}, and one line per connection
({"event": "connection", "n": N}). It exits on SIGTERM/SIGINT.

Every write is bounded in rate only by the socket: the point is to see the
daemon's memory stay bounded while a peer floods it.
"""
import argparse
import json
import os
import random
import signal
import socket
import sys
import threading
import time

MODES = [
    "garbage",
    "endless-headers",
    "huge-length",
    "lf-only",
    "giant-sps",
    "rtp-garbage",
    "endless-au",
    "rtcp-stall",
    "no-keyframe",
]

SSRC = 0x12345678  # as announced in the SETUP answer's Transport header


def rtp(seq, timestamp, payload, mark=True):
    """One interleaved RTP packet on channel 0 (payload type 96)."""
    hdr = bytes([0x80, (0x80 if mark else 0) | 96]) + (seq & 0xFFFF).to_bytes(2, "big")
    hdr += (timestamp & 0xFFFFFFFF).to_bytes(4, "big") + SSRC.to_bytes(4, "big")
    packet = hdr + payload
    return b"$\x00" + len(packet).to_bytes(2, "big") + packet


def sender_report(timestamp, packets, octets):
    """One interleaved RTCP sender report on channel 1."""
    now = time.time() + 2208988800  # NTP epoch
    ntp = (int(now) << 32) | int((now % 1) * (1 << 32))
    body = bytes([0x80, 200]) + (6).to_bytes(2, "big") + SSRC.to_bytes(4, "big")
    body += ntp.to_bytes(8, "big") + (timestamp & 0xFFFFFFFF).to_bytes(4, "big")
    body += packets.to_bytes(4, "big") + octets.to_bytes(4, "big")
    return b"$\x01" + len(body).to_bytes(2, "big") + body


# The test camera's own parameter sets (1280x720 Main), so the rtp-garbage mode
# gets past DESCRIBE and reaches the RTP path.
GOOD_SPROP = "Z01AH9oBQBbsBagICAoAAAMAAgAAAwApHjBlQA==,aO48gA=="


def sdp(sprop):
    return (
        "v=0\r\n"
        "o=- 1 1 IN IP4 127.0.0.1\r\n"
        "s=hostile\r\n"
        "t=0 0\r\n"
        "a=control:*\r\n"
        "m=video 0 RTP/AVP 96\r\n"
        "c=IN IP4 0.0.0.0\r\n"
        "a=rtpmap:96 H264/90000\r\n"
        f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={sprop};profile-level-id=4d401f\r\n"
        "a=control:stream=0\r\n"
    ).encode()


def giant_sprop():
    """An SPS NAL of about 1 MiB: a plausible header, then junk (base64)."""
    import base64

    sps = bytes([0x67, 0x4D, 0x40, 0x1F]) + os.urandom(1 << 20)
    return base64.b64encode(sps).decode() + ",aO48gA=="


def read_request(conn, buf):
    """Reads one request head (and skips its body); returns (method, cseq, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, None, b""
        buf += chunk
        if len(buf) > 1 << 20:
            return None, None, b""
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    cseq = "0"
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "cseq":
            cseq = value.strip()
        elif name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    return method, cseq, rest[length:]


def reply(conn, cseq, headers=(), body=b""):
    text = f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n"
    for h in headers:
        text += h + "\r\n"
    if body:
        text += f"Content-Length: {len(body)}\r\n"
    conn.sendall(text.encode() + b"\r\n" + body)


def handshake(conn, url_base, sprop):
    """Answers OPTIONS/DESCRIBE/SETUP until PLAY; returns True once PLAY is answered."""
    buf = b""
    while True:
        method, cseq, buf = read_request(conn, buf)
        if method is None:
            return False
        if method == "OPTIONS":
            reply(conn, cseq, ["Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"])
        elif method == "DESCRIBE":
            reply(
                conn,
                cseq,
                ["Content-Type: application/sdp", f"Content-Base: {url_base}/"],
                sdp(sprop),
            )
        elif method == "SETUP":
            reply(
                conn,
                cseq,
                [
                    "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=12345678",
                    "Session: 4242;timeout=60",
                ],
            )
        elif method == "PLAY":
            reply(conn, cseq, ["Session: 4242", "Range: npt=0.000-"])
            return True
        else:
            reply(conn, cseq, ["Session: 4242"])


def serve(conn, mode, port):
    url_base = f"rtsp://127.0.0.1:{port}/main"
    if mode == "garbage":
        read_request(conn, b"")
        for _ in range(64):
            conn.sendall(os.urandom(4096))
        return
    if mode == "endless-headers":
        _, cseq, _ = read_request(conn, b"")
        conn.sendall(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n".encode())
        line = b"X-Hostile-" + b"a" * 60 + b": " + b"b" * 1000 + b"\r\n"
        block = line * 64
        while True:
            conn.sendall(block)
    if mode == "huge-length":
        _, cseq, _ = read_request(conn, b"")
        conn.sendall(
            f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n"
            "Content-Length: 4000000000\r\n\r\n".encode()
        )
        block = b"v=0\r\n" * 13000
        while True:
            conn.sendall(block)
    if mode == "lf-only":
        read_request(conn, b"")
        conn.sendall(b"RTSP/1.0 200 ")
        block = (b"a" * 1000 + b"\n\n") * 64
        while True:
            conn.sendall(block)
    if mode == "giant-sps":
        handshake(conn, url_base, giant_sprop())
        time.sleep(30)
        return
    if mode == "rtp-garbage":
        if not handshake(conn, url_base, GOOD_SPROP):
            return
        rnd = random.Random(1)
        while True:
            kind = rnd.randrange(4)
            if kind == 0:
                # Declares 65535 bytes on the RTP channel; junk inside.
                conn.sendall(b"$\x00\xff\xff" + os.urandom(65535))
            elif kind == 1:
                # A plausible RTP header with a nonsense payload.
                hdr = bytes([0x80, 0x60]) + rnd.randrange(65536).to_bytes(2, "big")
                hdr += rnd.randrange(1 << 32).to_bytes(4, "big") + (0x12345678).to_bytes(4, "big")
                payload = hdr + os.urandom(60000)
                conn.sendall(b"$\x00" + len(payload).to_bytes(2, "big") + payload)
            elif kind == 2:
                # An unassigned channel.
                conn.sendall(b"$\x07\xff\xff" + os.urandom(65535))
            else:
                # Not a frame, not a message.
                conn.sendall(os.urandom(8192))
    if mode == "endless-au":
        if not handshake(conn, url_base, GOOD_SPROP):
            return
        sei = b"\x06" + b"\x55" * 60000
        seq, timestamp = 1, 90000
        while True:
            conn.sendall(rtp(seq, timestamp, sei))
            seq += 1
            timestamp += 3000
    if mode == "rtcp-stall":
        if not handshake(conn, url_base, GOOD_SPROP):
            return
        timestamp = 90000
        # An IDR slice (NAL type 5); its content is never decoded by ingest.
        conn.sendall(rtp(1, timestamp, b"\x65\x88" + b"\x84" * 2000))
        n = 0
        while True:
            n += 1
            time.sleep(1)
            conn.sendall(sender_report(timestamp + n * 90000, 1, 2002))
    if mode == "no-keyframe":
        if not handshake(conn, url_base, GOOD_SPROP):
            return
        seq, timestamp = 1, 90000
        while True:
            # A non-IDR slice (NAL type 1): a frame, but never a random-access point.
            conn.sendall(rtp(seq, timestamp, b"\x41\x9a" + b"\x84" * 500))
            seq += 1
            timestamp += 9000
            time.sleep(0.1)
    raise SystemExit(f"unknown mode {mode}")


def main():
    p = argparse.ArgumentParser(description="malicious RTSP server for tests")
    p.add_argument("mode", choices=MODES)
    p.add_argument("--port", type=int, default=0, help="0 = any free port")
    p.add_argument("--exit-with-parent", action="store_true")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if a.exit_with_parent:
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(16)
    port = srv.getsockname()[1]
    print(json.dumps({"event": "ready", "port": port, "mode": a.mode}), flush=True)
    n = 0
    while True:
        conn, _ = srv.accept()
        n += 1
        print(json.dumps({"event": "connection", "n": n}), flush=True)

        def run(c=conn):
            try:
                serve(c, a.mode, port)
            except (OSError, ValueError):
                pass  # the daemon hung up: what it should do
            finally:
                c.close()

        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
