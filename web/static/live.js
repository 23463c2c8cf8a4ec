// Live view: fragmented MP4 from a WebSocket into Media Source Extensions.
// Protocol (see src/web/live.rs): a JSON text message with the codec, a binary init
// segment, then one binary moof+mdat per frame. No framework, no CDN.

const video = document.getElementById("live");
const status = document.getElementById("live-status");

function say(text) {
  if (status) status.textContent = text;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + video.dataset.ws);
  ws.binaryType = "arraybuffer";
  let source = null;
  let buffer = null;
  const queue = [];

  function pump() {
    if (!buffer || buffer.updating || queue.length === 0) return;
    try {
      buffer.appendBuffer(queue.shift());
    } catch (e) {
      // QuotaExceeded: drop what is far behind and carry on.
      trim(0);
    }
  }

  function trim(keepSeconds) {
    if (!buffer || buffer.updating || buffer.buffered.length === 0) return;
    const start = buffer.buffered.start(0);
    const cut = video.currentTime - keepSeconds;
    if (cut - start > 1) buffer.remove(start, cut);
  }

  function chase() {
    // Stay at the live edge: jump if more than 1.5 s behind.
    const b = video.buffered;
    if (b.length === 0) return;
    const end = b.end(b.length - 1);
    if (end - video.currentTime > 1.5) video.currentTime = Math.max(b.start(b.length - 1), end - 0.3);
    if (video.paused) video.play().catch(() => {});
  }

  ws.onmessage = (event) => {
    if (typeof event.data === "string") {
      const info = JSON.parse(event.data);
      const type = 'video/mp4; codecs="' + info.codec + '"';
      if (!window.MediaSource || !MediaSource.isTypeSupported(type)) {
        say("This browser cannot play this camera's video (" + info.codec + ").");
        ws.close();
        return;
      }
      source = new MediaSource();
      video.src = URL.createObjectURL(source);
      source.addEventListener("sourceopen", () => {
        buffer = source.addSourceBuffer(type);
        buffer.mode = "segments";
        buffer.addEventListener("updateend", () => {
          chase();
          if (queue.length === 0) trim(30);
          pump();
        });
        pump();
      }, { once: true });
      say("Live · " + info.width + "×" + info.height);
      return;
    }
    queue.push(event.data);
    // A stalled decoder must not grow the queue without bound: dropping frames in the
    // middle would break decoding, so start over at the next keyframe instead.
    if (queue.length > 300) {
      ws.close();
      return;
    }
    pump();
  };

  ws.onclose = (event) => {
    // 4001: this session may no longer watch (logged out, expired, access withdrawn).
    if (event.code === 4001) {
      say("Your session has ended. Reload the page to log in again.");
      return;
    }
    say("Disconnected; reconnecting…");
    setTimeout(connect, 2000);
  };
}

if (video) connect();
