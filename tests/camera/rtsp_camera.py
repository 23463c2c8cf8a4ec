#!/usr/bin/python3
"""Porchlight's test camera: an RTSP server with H.264 on /main and /sub.

Run it with Debian's /usr/bin/python3 (the only interpreter with `gi`).
See README.md next to this file for the flags and scenes. Why it is built so:

- GstRtspServer (not ffmpeg or mediamtx): it is a real RTSP server with real
  digest auth, and it runs in-process, so we can count frames and move the
  scene from Python.
- x264enc tune=zerolatency (no B-frames, no lookahead) with key-int-max=GOP:
  every GOP starts with an IDR, like a camera's "I-frame interval".
  rtph264pay config-interval=-1 repeats SPS/PPS before every IDR, as most
  cameras do, so a client can start decoding at any IDR.
- Media are NOT shared: each RTSP session gets its own pipeline, so a new
  client's first frame is an IDR, and frames can be counted per session.
- Every source is live (is-live=true), so frames come at --fps in real time.
- The alternating scene's square is positioned from wall time since start
  (one GLib timeout updates every pipeline), so /main and /sub, and every
  session, agree; the schedule is printed as JSON so a test can compute it.
  There is no timestamp overlay: changing digits would be motion.
- "still" uses pattern=smpte75: pattern=smpte has an animated noise patch.
- --realistic uses a frozen textured picture and a constant quantiser:
  bitrate control would keep refining a still picture, so no two frames
  would be equal; this way still frames are bit-identical, IDRs are large
  and P-frames tiny, as with a real camera watching an empty room.
- frames_sent counts buffers entering rtph264pay (one buffer from x264enc
  is one access unit, i.e. one frame). The server holds the first frame of
  a session while it answers DESCRIBE and sends it after PLAY, so a session
  that never PLAYs still counts 1.
"""
import argparse
import json
import math
import os
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

ROLE = "camera-user"
SQUARE = 0.15  # side of the square as a fraction of the frame height
GREY = 0xFF808080  # ARGB background of the alternating scene
REALISTIC_QP = 24  # about 5 Mbit/s on a 1080p /main at 10 fps, GOP 10


def parse_args():
    p = argparse.ArgumentParser(description="RTSP test camera (/main, /sub)")
    p.add_argument("--port", type=int, default=8554, help="0 = any free port")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--scene", choices=["still", "alternating", "ball"], default="still")
    p.add_argument("--still-secs", type=float, default=10.0)
    p.add_argument("--moving-secs", type=float, default=5.0)
    p.add_argument("--fps", type=int, default=10)
    p.add_argument("--gop", type=int, default=10, help="key-int-max, in frames")
    p.add_argument("--bitrate", type=int, default=1000,
                   help="x264 kbit/s for /main (ignored with --realistic)")
    p.add_argument("--sub-bitrate", type=int, default=300,
                   help="x264 kbit/s for /sub (ignored with --realistic)")
    p.add_argument("--realistic", action="store_true",
                   help="/main 1920x1080 High, x264 veryfast, textured, ~5 Mbit/s")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--auth", choices=["digest", "basic"], default="digest")
    p.add_argument("--status", help="JSON file rewritten every 0.5 s with frame counts")
    p.add_argument("--shared", action="store_true",
                   help="one pipeline per mount for all clients (benchmarks)")
    p.add_argument("--mdns", metavar="NAME",
                   help="announce /main as NAME._rtsp._tcp.local. over mDNS on --address "
                        "(python3-zeroconf), TXT path=/main and model=porchlight-test-camera")
    p.add_argument("--onvif", metavar="NAME",
                   help="answer ONVIF WS-Discovery probes (239.255.255.250:3702, joined on "
                        "--address's interface) as NAME, hardware porchlight-test-camera, "
                        "XAddr http://ADDRESS:PORT/onvif/device_service, which answers "
                        "GetProfiles and GetStreamUri (digest-checked with --user/--password)")
    p.add_argument("--onvif-hello", action="store_true",
                   help="with --onvif: multicast a WS-Discovery Hello to "
                        "239.255.255.250:3702 on --address's interface once ready, and a "
                        "Bye when stopped cleanly (SIGTERM or SIGINT), as a camera does "
                        "when it boots and shuts down")
    p.add_argument("--onvif-media-path", metavar="PATH",
                   help="with --onvif: answer GetProfiles and GetStreamUri only at PATH "
                        "(e.g. /onvif/Media), as many real cameras do; the device service "
                        "answers them with a ter:ActionNotSupported Fault (HTTP 400) and "
                        "answers GetServices with the device and Media XAddrs")
    p.add_argument("--onvif-old", action="store_true",
                   help="with --onvif: a camera before ONVIF 2.0: GetServices gets a Fault, "
                        "GetCapabilities gives the Media XAddr (--onvif-media-path, or the "
                        "device service)")
    p.add_argument("--onvif-auth-everything", action="store_true",
                   help="with --onvif: GetServices and GetCapabilities also need the "
                        "UsernameToken (not ONVIF's rule, which makes them PRE_AUTH)")
    p.add_argument("--exit-with-parent", action="store_true",
                   help="exit when the parent process dies (for test harnesses)")
    a = p.parse_args()
    if (a.user is None) != (a.password is None):
        p.error("--user and --password go together")
    if (a.onvif_media_path or a.onvif_old or a.onvif_auth_everything
            or a.onvif_hello) and not a.onvif:
        p.error("--onvif-media-path, --onvif-old, --onvif-auth-everything and "
                "--onvif-hello go with --onvif")
    if a.onvif_media_path is not None and not a.onvif_media_path.startswith("/"):
        p.error("--onvif-media-path must start with /")
    if a.fps < 1 or a.gop < 1 or a.still_secs <= 0 or a.moving_secs <= 0:
        p.error("--fps, --gop, --still-secs and --moving-secs must be positive")
    return a


def mounts(a):
    """(name, width, height, kbit/s, x264 preset, H.264 profile) per mount."""
    if a.realistic:
        main = ("main", 1920, 1080, a.bitrate, "veryfast", "high")
    else:
        main = ("main", 1280, 720, a.bitrate, "ultrafast", "main")
    return [main, ("sub", 640, 360, a.sub_bitrate, "ultrafast", "baseline")]


def background(a, w, h):
    """The still picture behind everything, as a live source at w x h."""
    raw = f"video/x-raw,width={w},height={h},framerate={a.fps}/1"
    if a.scene == "ball":
        return f"videotestsrc is-live=true pattern=ball ! {raw}"
    if a.realistic:  # frozen, blurred noise: detailed like a real view, but still
        return (f"videotestsrc pattern=snow num-buffers=1 "
                f"! video/x-raw,width={w // 4},height={h // 4} ! videoscale "
                f"! video/x-raw,width={w},height={h} ! imagefreeze is-live=true ! {raw}")
    if a.scene == "alternating":
        return f"videotestsrc is-live=true pattern=solid-color foreground-color={GREY} ! {raw}"
    return f"videotestsrc is-live=true pattern=smpte75 ! {raw}"


def launch_string(a, w, h, kbps, preset, profile):
    # ultrafast turns CABAC off, and then x264 emits Constrained Baseline even
    # under profile=main caps; cabac=true gives the Main profile asked for.
    cabac = "" if profile == "baseline" else "cabac=true "
    # Bitrate control keeps "refining" a detailed still picture, so every frame
    # would differ; a constant quantiser keeps still frames bit-identical.
    rate = f"pass=quant quantizer={REALISTIC_QP}" if a.realistic else f"bitrate={kbps}"
    # threads=1: zerolatency's sliced threads split a frame into slices, and
    # rtph264pay config-interval=-1 then puts SPS/PPS before *each* IDR slice,
    # which starts a new access unit mid-picture (ffmpeg splits the frame).
    enc = (f"videoconvert ! x264enc tune=zerolatency speed-preset={preset} {cabac}"
           f"threads=1 key-int-max={a.gop} {rate} ! video/x-h264,profile={profile} "
           f"! rtph264pay name=pay0 pt=96 config-interval=-1")
    if a.scene != "alternating":
        return f"( {background(a, w, h)} ! {enc} )"
    side = round(SQUARE * h)
    return (f"( compositor name=comp background=black "
            f"! video/x-raw,width={w},height={h},framerate={a.fps}/1 ! {enc} "
            f"{background(a, w, h)} ! comp.sink_0 "
            f"videotestsrc is-live=true pattern=white "
            f"! video/x-raw,width={side},height={side},framerate={a.fps}/1 ! comp.sink_1 )")


def square_position(a, now):
    """Normalised top-left (x, y) of the square at wall time `now`.

    Still for still_secs from start, then moves for moving_secs along a
    closed path (back to the start point), then repeats.
    """
    x0, y0 = 0.1, 0.5 - SQUARE / 2
    phase = (now - a.started_unix) % (a.still_secs + a.moving_secs)
    if phase < a.still_secs:
        return x0, y0
    u = (phase - a.still_secs) / a.moving_secs  # 0..1 through the movement
    x = x0 + 0.65 * (1 - abs(1 - 2 * u))  # right then back
    y = y0 + 0.25 * math.sin(2 * math.pi * u)  # down, up, back
    return x, y


class Mount:
    """Counters for one mount, summed over its media (= RTSP sessions).

    Media come and go on the server's client thread, frames are counted on
    each pipeline's streaming thread, and the main loop reads: hence the lock.
    """

    def __init__(self, name, width, height):
        self.name, self.width, self.height = name, width, height
        self.lock = threading.Lock()
        self.frames_sent = 0  # buffers into rtph264pay, ever, all sessions
        self.clients = 0  # media currently prepared
        self.sessions = 0  # media ever configured
        self.squares = set()  # compositor pads of the moving square, one per media

    def on_media_configure(self, _factory, media):
        bin_ = media.get_element()
        pay = bin_.get_by_name("pay0")
        pay.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.on_frame)
        comp = bin_.get_by_name("comp")
        square = comp.get_static_pad("sink_1") if comp is not None else None
        if square is not None:
            square.set_property("zorder", 1)
        media.connect("unprepared", self.on_unprepared, square)
        with self.lock:
            self.sessions += 1
            self.clients += 1
            if square is not None:
                self.squares.add(square)

    def on_unprepared(self, _media, square):
        with self.lock:
            self.clients -= 1
            self.squares.discard(square)

    def on_frame(self, _pad, _info):
        with self.lock:
            self.frames_sent += 1  # one buffer from x264enc = one access unit
        return Gst.PadProbeReturn.OK

    def move_squares(self, x, y):
        with self.lock:
            pads = list(self.squares)
        for pad in pads:
            pad.set_property("xpos", round(x * self.width))
            pad.set_property("ypos", round(y * self.height))

    def status(self):
        with self.lock:
            return {"frames_sent": self.frames_sent, "clients": self.clients,
                    "sessions": self.sessions}


def make_auth(a):
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", ROLE)
    if a.auth == "digest":
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(a.user, a.password, token)
    else:
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
    return auth


def make_factory(a, launch, mount):
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    # Shared only on request (benchmarks): one encoder then feeds every client, so
    # eight clients cost one encode, but a late client starts mid-GOP.
    factory.set_shared(a.shared)
    factory.connect("media-configure", mount.on_media_configure)
    if a.user is not None:
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role_from_structure(Gst.Structure.new_from_string(
            f"{ROLE}, media.factory.access=(boolean)true, "
            f"media.factory.construct=(boolean)true"))
        factory.set_permissions(perms)
    return factory


class OnvifCounters:
    """What the ONVIF device service saw, for the status file: `failed_digests`
    counts calls whose UsernameToken was present but wrong (a camera's failed
    logins, which real ones lock an address out after). HTTP threads count; the
    status writer reads: hence the lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.failed_digests = 0

    def failed_digest(self):
        with self.lock:
            self.failed_digests += 1

    def status(self):
        with self.lock:
            return {"failed_digests": self.failed_digests}


# One writer at a time: the main loop's tick and the ONVIF service (which writes at
# once after counting, so a test reading right after its call sees the count).
STATUS_LOCK = threading.Lock()


def write_status(path, all_mounts, onvif=None):
    with STATUS_LOCK:  # the doc too, so an older one never overwrites a newer one
        doc = {m.name: m.status() for m in all_mounts}
        if onvif is not None:
            doc["onvif"] = onvif.status()
        doc["updated_unix"] = time.time()
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)  # atomic: readers never see a half-written file


def die(msg):
    print(f"rtsp_camera: {msg}", file=sys.stderr)
    sys.exit(1)


def announce(a, port):
    """Announces /main over mDNS, on --address's interface only (loopback in tests),
    the way a camera announces itself: `_rtsp._tcp.local.` with a `path` TXT key."""
    import socket
    try:
        from zeroconf import ServiceInfo, Zeroconf
    except ImportError:
        die("--mdns needs python3-zeroconf (make deps)")
    zc = Zeroconf(interfaces=[a.address])
    info = ServiceInfo(
        "_rtsp._tcp.local.",
        f"{a.mdns}._rtsp._tcp.local.",
        addresses=[socket.inet_aton(a.address)],
        port=port,
        properties={"path": "/main", "model": "porchlight-test-camera"},
        server=f"{a.mdns.lower().replace(' ', '-')}.local.",
    )
    zc.register_service(info)
    return zc


WSD_GROUP, WSD_GROUP_V6, WSD_PORT = "239.255.255.250", "ff02::c", 3702


def url_host(address):
    """ADDRESS as a URL host: an IPv6 literal in brackets."""
    return f"[{address}]" if ":" in address else address


def ipv6_interface(address):
    """The index of the interface holding the IPv6 ADDRESS (/proc/net/if_inet6)."""
    import socket
    want = socket.inet_pton(socket.AF_INET6, address).hex()
    with open("/proc/net/if_inet6") as f:
        for line in f:
            fields = line.split()
            if fields[0] == want:
                return int(fields[1], 16)
    die(f"no interface has the address {address}")
# The envelope of every WS-Discovery message the camera sends.
WSD_ENVELOPE = """<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" \
xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" \
xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" \
xmlns:dn="http://www.onvif.org/ver10/network/wsdl" \
xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<s:Header><a:MessageID>urn:uuid:{message_id}</a:MessageID>
"""
# What a ProbeMatch and a Hello say about the camera.
DEVICE_DETAILS = """<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/{name} \
onvif://www.onvif.org/hardware/porchlight-test-camera \
onvif://www.onvif.org/location/country/nowhere</d:Scopes>
<d:XAddrs>{xaddr}</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion>
"""
PROBE_MATCHES = WSD_ENVELOPE + """<a:RelatesTo>{relates_to}</a:RelatesTo>
<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>
<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action>
</s:Header><s:Body><d:ProbeMatches><d:ProbeMatch>
<a:EndpointReference><a:Address>urn:uuid:{endpoint}</a:Address></a:EndpointReference>
{details}</d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>"""
# A Hello (details: DEVICE_DETAILS) or a Bye (no details).
ANNOUNCEMENT = WSD_ENVELOPE + """<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>
<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/{kind}</a:Action>
<d:AppSequence InstanceId="{instance}" MessageNumber="{number}"/>
</s:Header><s:Body><d:{kind}>
<a:EndpointReference><a:Address>urn:uuid:{endpoint}</a:Address></a:EndpointReference>
{details}</d:{kind}></s:Body></s:Envelope>"""


def answer_onvif_probes(a, http_port):
    """Answers WS-Discovery Probes for ONVIF cameras the way a camera does: joins the
    group on --address's interface, and sends a ProbeMatches unicast to the prober,
    RelatesTo its MessageID. Runs on its own daemon thread. With --onvif-hello it
    multicasts a Hello now (from port 3702, on --address's interface) and returns a
    function that multicasts the Bye; else it returns None."""
    import re
    import socket
    import urllib.parse
    import uuid
    import struct
    v6 = ":" in a.address
    index = ipv6_interface(a.address) if v6 else 0
    group = WSD_GROUP_V6 if v6 else WSD_GROUP
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        if v6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(("::", WSD_PORT))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                            socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index))
        else:
            sock.bind(("", WSD_PORT))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                            socket.inet_aton(group) + socket.inet_aton(a.address))
    except OSError as e:
        die(f"--onvif: cannot listen on {group}:{WSD_PORT} via {a.address}: {e}")
    # IPv6: sent from --address itself (not the link-local address the kernel would
    # pick), so the XAddr is at the address the datagram comes from.
    def send(data, to):
        if v6:
            source = socket.inet_pton(socket.AF_INET6, a.address) + struct.pack("@I", index)
            sock.sendmsg([data], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, source)], 0, to)
        else:
            sock.sendto(data, to)

    endpoint = str(uuid.uuid5(uuid.NAMESPACE_URL, f"porchlight-test-camera/{a.onvif}"))
    xaddr = f"http://{url_host(a.address)}:{http_port}/onvif/device_service"
    details = DEVICE_DETAILS.format(name=urllib.parse.quote(a.onvif, safe=""), xaddr=xaddr)

    def serve():
        while True:
            data, sender = sock.recvfrom(65536)
            text = data.decode("utf-8", "replace")
            if ":Probe>" not in text and "<Probe>" not in text:
                continue  # a Hello, Bye, or our own kind's ProbeMatches
            types = re.search(r"<(?:\w+:)?Types>([^<]*)</", text)
            if types and "NetworkVideoTransmitter" not in types.group(1):
                continue
            found = re.search(r"<(?:\w+:)?MessageID>([^<]+)</", text)
            if not found:
                continue
            reply = PROBE_MATCHES.format(message_id=uuid.uuid4(),
                                         relates_to=found.group(1).strip(),
                                         endpoint=endpoint, details=details)
            send(reply.encode(), sender)

    threading.Thread(target=serve, daemon=True).start()
    if not a.onvif_hello:
        return None
    if v6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(a.address))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    to = (group, WSD_PORT, 0, index) if v6 else (group, WSD_PORT)
    instance, number = int(time.time()), [0]

    def announce_onvif(kind, details):
        number[0] += 1
        message = ANNOUNCEMENT.format(message_id=uuid.uuid4(), kind=kind, instance=instance,
                                      number=number[0], endpoint=endpoint, details=details)
        send(message.encode(), to)

    announce_onvif("Hello", details)
    return lambda: announce_onvif("Bye", "")


SOAP = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope '
        'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:ter="http://www.onvif.org/ver10/error" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
        'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
        'xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body>{}</s:Body></s:Envelope>')
FAULT = ('<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>{}</s:Value>'
         '</s:Subcode></s:Code></s:Fault>')


DEVICE_PATH = "/onvif/device_service"


def onvif_device_service(a, rtsp_port, counters, on_count):
    """The device service the XAddr points at, on --address: answers the Media calls
    GetProfiles (profiles `main` and `sub`) and GetStreamUri (rtsp://ADDRESS:PORT/main
    or /sub), checking the WS-Security UsernameToken digest against --user/--password
    when they are set (HTTP 400 ter:NotAuthorized otherwise, as ONVIF says): on every
    Media call, and on GetServices/GetCapabilities only when a token is sent (they are
    PRE_AUTH in ONVIF Core) unless --onvif-auth-everything. Each wrong token is
    counted in `counters` and `on_count()` called before the answer goes out. Any
    other call gets a Fault. By default every path answers the Media calls
    and the device calls GetServices and GetCapabilities get a Fault (a camera that
    serves Media at its device service). With --onvif-media-path only that path
    answers the Media calls, and the others answer GetServices (device and Media
    entries); with --onvif-old GetServices gets a Fault and GetCapabilities answers.
    GetCapabilities, deprecated since ONVIF 2.0, is answered only with --onvif-old, so
    a test shows which call found the Media address. Returns its port."""
    import base64
    import hashlib
    import http.server
    import re
    import socket

    def field(text, name):
        m = re.search(rf"<(?:\w+:)?{name}(?:\s[^>]*)?>([^<]*)</", text)
        return m.group(1).strip() if m else None

    def digest_ok(text):
        nonce, created = field(text, "Nonce"), field(text, "Created")
        if field(text, "Username") != a.user or not nonce or not created:
            return False
        try:
            raw = base64.b64decode(nonce, validate=True)
        except ValueError:
            return False
        digest = hashlib.sha1(raw + created.encode() + a.password.encode()).digest()
        return base64.b64encode(digest).decode() == field(text, "Password")

    def authorised(text):
        if a.user is None:
            return True
        pre_auth = ("GetServices" in text or "GetCapabilities" in text) \
            and not a.onvif_auth_everything
        if "UsernameToken" not in text:
            return pre_auth
        if digest_ok(text):
            return True
        counters.failed_digest()
        on_count()
        return False

    def xaddr(path):
        return f"http://{url_host(a.address)}:{httpd.server_address[1]}{path}"

    def services():
        media = xaddr(a.onvif_media_path or DEVICE_PATH)
        return ("<tds:GetServicesResponse>"
                "<tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace>"
                f"<tds:XAddr>{xaddr(DEVICE_PATH)}</tds:XAddr><tds:Version><tt:Major>2</tt:Major>"
                "<tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
                "<tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace>"
                f"<tds:XAddr>{media}</tds:XAddr><tds:Version><tt:Major>2</tt:Major>"
                "<tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
                "</tds:GetServicesResponse>")

    def capabilities():
        media = xaddr(a.onvif_media_path or DEVICE_PATH)
        return ("<tds:GetCapabilitiesResponse><tds:Capabilities>"
                f"<tt:Device><tt:XAddr>{xaddr(DEVICE_PATH)}</tt:XAddr></tt:Device>"
                f"<tt:Media><tt:XAddr>{media}</tt:XAddr><tt:StreamingCapabilities>"
                "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
                "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
                "</tds:Capabilities></tds:GetCapabilitiesResponse>")

    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, status, body):
            data = SOAP.format(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = min(int(self.headers.get("Content-Length", "0")), 65536)
            text = self.rfile.read(length).decode("utf-8", "replace")
            if not authorised(text):
                return self.reply(400, FAULT.format("ter:NotAuthorized"))
            separate = a.onvif_media_path is not None
            if not separate or self.path != a.onvif_media_path:  # the device service
                if "GetServices" in text and separate and not a.onvif_old:
                    return self.reply(200, services())
                if "GetCapabilities" in text and a.onvif_old:
                    return self.reply(200, capabilities())
                if separate:
                    return self.reply(400, FAULT.format("ter:ActionNotSupported"))
            if "GetProfiles" in text:
                return self.reply(200, "<trt:GetProfilesResponse>"
                                       '<trt:Profiles fixed="true" token="main"><tt:Name>main</tt:Name></trt:Profiles>'
                                       '<trt:Profiles fixed="true" token="sub"><tt:Name>sub</tt:Name></trt:Profiles>'
                                       "</trt:GetProfilesResponse>")
            token = field(text, "ProfileToken")
            if "GetStreamUri" in text and token in ("main", "sub"):
                uri = f"rtsp://{url_host(a.address)}:{rtsp_port}/{token}"
                return self.reply(200, "<trt:GetStreamUriResponse><trt:MediaUri>"
                                       f"<tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false"
                                       "</tt:InvalidAfterConnect></trt:MediaUri>"
                                       "</trt:GetStreamUriResponse>")
            return self.reply(400, FAULT.format("ter:ActionNotSupported"))

        def log_message(self, *_args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in a.address else socket.AF_INET

    httpd = Server((a.address, 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd.server_address[1]


def main():
    a = parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(a.address)
    server.set_service(str(a.port))
    if a.user is not None:
        server.set_auth(make_auth(a))

    all_mounts = []
    for name, w, h, kbps, preset, profile in mounts(a):
        launch = launch_string(a, w, h, kbps, preset, profile)
        try:  # the server parses lazily, per client; fail now instead
            Gst.parse_launch(launch.strip("() "))
        except GLib.Error as e:
            die(f"bad pipeline for /{name} (missing plugin?): {e.message}\n  {launch}")
        mount = Mount(name, w, h)
        all_mounts.append(mount)
        server.get_mount_points().add_factory(f"/{name}", make_factory(a, launch, mount))

    try:  # unlike attach(), create_source() says why binding failed
        source = server.create_source(None)
    except GLib.Error as e:
        die(f"cannot listen on {a.address}:{a.port}: {e.message}")
    source.attach(None)

    loop = GLib.MainLoop()

    def on_signal():
        loop.quit()
        return GLib.SOURCE_CONTINUE

    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, on_signal)

    a.started_unix = time.time()
    if a.scene == "alternating":
        def tick():
            x, y = square_position(a, time.time())
            for m in all_mounts:
                m.move_squares(x, y)
            return True
        GLib.timeout_add(20, tick)

    parent = os.getppid()

    onvif = OnvifCounters() if a.onvif else None

    def save_status():
        if a.status:
            write_status(a.status, all_mounts, onvif)

    def housekeeping():
        save_status()
        if a.exit_with_parent and os.getppid() != parent:
            loop.quit()
        return True

    housekeeping()  # the status file exists before "ready" is printed
    GLib.timeout_add(500, housekeeping)

    ready = {"event": "ready", "port": server.get_bound_port(), "address": a.address,
             "started_unix": a.started_unix, "scene": a.scene,
             "still_secs": a.still_secs, "moving_secs": a.moving_secs,
             "fps": a.fps, "gop": a.gop, "mounts": {
                 m.name: {"width": m.width, "height": m.height} for m in all_mounts}}
    announcer = announce(a, server.get_bound_port()) if a.mdns else None
    say_bye = None
    if a.onvif:
        ready["onvif_port"] = onvif_device_service(a, server.get_bound_port(), onvif,
                                                   save_status)
        say_bye = answer_onvif_probes(a, ready["onvif_port"])
    print(json.dumps(ready), flush=True)
    loop.run()
    if say_bye is not None:
        say_bye()
    if announcer is not None:
        announcer.unregister_all_services()
        announcer.close()

    save_status()
    print(json.dumps({"event": "stopped"}), flush=True)


if __name__ == "__main__":
    main()
