// The camera settings page's ignore-zone editor: the camera's snapshot on a canvas,
// with the zones of the "Zones" field drawn over it. Dragging adds a rectangle,
// clicking one removes it; either way the field is rewritten, and the field is what
// the form submits (one rectangle a line, "left top right bottom" in percent), so
// the page works the same without this script. No libraries; CSP-compatible (no
// inline code or styles).
(function () {
  'use strict';
  var canvas = document.getElementById('zones-canvas');
  var field = document.getElementById('zones');
  var status = document.getElementById('zones-status');
  if (!canvas || !field || !status) { return; }
  var MAX_ZONES = 16;
  var picture = new Image();
  var rects = []; // [left, top, right, bottom], percent
  var drag = null;

  function clamp(v) { return Math.min(100, Math.max(0, v)); }
  function round(v) { return Math.round(v * 10) / 10; }

  function parse() {
    rects = [];
    field.value.split('\n').forEach(function (line) {
      var n = line.trim().split(/[\s,]+/).filter(Boolean).map(Number);
      var ok = n.length === 4 && n.every(function (v) { return isFinite(v) && v >= 0 && v <= 100; });
      if (ok) {
        rects.push([Math.min(n[0], n[2]), Math.min(n[1], n[3]), Math.max(n[0], n[2]), Math.max(n[1], n[3])]);
      }
    });
  }

  function write() {
    field.value = rects.map(function (r) { return r.map(round).join(' '); }).join('\n') +
      (rects.length ? '\n' : '');
  }

  function draw() {
    var ctx = canvas.getContext('2d');
    var w = canvas.width, h = canvas.height;
    ctx.drawImage(picture, 0, 0, w, h);
    (drag ? rects.concat([drag]) : rects).forEach(function (r) {
      var x0 = Math.min(r[0], r[2]) / 100 * w, y0 = Math.min(r[1], r[3]) / 100 * h;
      var x1 = Math.max(r[0], r[2]) / 100 * w, y1 = Math.max(r[1], r[3]) / 100 * h;
      ctx.fillStyle = 'rgba(200, 30, 30, 0.35)';
      ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
      ctx.strokeStyle = '#e04040';
      ctx.lineWidth = Math.max(2, w / 320);
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    });
  }

  function at(e) {
    var b = canvas.getBoundingClientRect();
    return [clamp((e.clientX - b.left) / b.width * 100), clamp((e.clientY - b.top) / b.height * 100)];
  }

  canvas.addEventListener('pointerdown', function (e) {
    var p = at(e);
    drag = [p[0], p[1], p[0], p[1]];
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', function (e) {
    if (!drag) { return; }
    var p = at(e);
    drag[2] = p[0];
    drag[3] = p[1];
    draw();
  });
  canvas.addEventListener('pointerup', function (e) {
    if (!drag) { return; }
    var p = at(e), d = drag;
    drag = null;
    var r = [Math.min(d[0], p[0]), Math.min(d[1], p[1]), Math.max(d[0], p[0]), Math.max(d[1], p[1])];
    if (r[2] - r[0] < 1 && r[3] - r[1] < 1) {
      // A click: remove the topmost zone under it.
      for (var i = rects.length - 1; i >= 0; i--) {
        var z = rects[i];
        if (p[0] >= z[0] && p[0] <= z[2] && p[1] >= z[1] && p[1] <= z[3]) {
          rects.splice(i, 1);
          break;
        }
      }
    } else if (rects.length < MAX_ZONES) {
      rects.push(r);
    } else {
      status.textContent = 'At most ' + MAX_ZONES + ' zones.';
    }
    write();
    draw();
  });
  canvas.addEventListener('pointercancel', function () { drag = null; draw(); });
  field.addEventListener('input', function () { parse(); draw(); });

  picture.onload = function () {
    canvas.width = picture.naturalWidth;
    canvas.height = picture.naturalHeight;
    canvas.hidden = false;
    parse();
    draw();
    status.textContent = '';
  };
  picture.onerror = function () {
    status.textContent = 'No picture from the camera now (is it streaming?): type the zones below.';
  };
  status.textContent = 'Loading the camera\u2019s picture\u2026';
  picture.src = canvas.getAttribute('data-snapshot');
})();
