// Shows event notifications (motion, doorbell) on any open page, from this user's
// server-sent events. Nothing is shown for other users; nothing is stored.
(function () {
  'use strict';
  if (!window.EventSource) { return; }
  var box = document.getElementById('live-notices');
  if (!box) { return; }
  var source = new EventSource('/notifications/stream');
  source.addEventListener('notice', function (e) {
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
  });
})();
