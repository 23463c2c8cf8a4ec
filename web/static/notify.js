// Shows event notifications (motion, doorbell) on any open page, from this user's
// server-sent events. Nothing is shown for other users; nothing is stored.
// The stream is closed when the page is left: Chromium otherwise keeps a left page's
// stream open for about a minute, and over HTTP/1.1 (six connections per host) a few
// quick clicks used them all, so the next page waited.
(function () {
  'use strict';
  if (!window.EventSource) { return; }
  var box = document.getElementById('live-notices');
  if (!box) { return; }
  var source = null;

  function show(e) {
    var notice;
    try { notice = JSON.parse(e.data); } catch (err) { return; }
    var item = document.createElement('p');
    item.className = 'alert notice-live';
    item.setAttribute('role', 'status');
    var link = document.createElement('a');
    link.href = notice.link;
    link.textContent = notice.title;
    item.appendChild(link);
    box.insertBefore(item, box.firstChild);
    while (box.children.length > 3) { box.removeChild(box.lastChild); }
  }

  function open() {
    source = new EventSource('/notifications/stream');
    source.addEventListener('notice', show);
  }

  window.addEventListener('pagehide', function () {
    if (source) { source.close(); source = null; }
  });
  // Back to a page kept in the back/forward cache: listen again.
  window.addEventListener('pageshow', function (e) {
    if (e.persisted && !source) { open(); }
  });
  open();
})();
