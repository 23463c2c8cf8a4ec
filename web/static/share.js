// A share link's page: the secret is in the URL fragment, which the browser never
// sends to a server. Post it once to get a viewer cookie for this link, then play.
(function () {
  'use strict';
  var root = document.getElementById('share');
  var status = document.getElementById('share-status');
  if (!root || !status) { return; }
  var link = root.getAttribute('data-link');
  var secret = window.location.hash.slice(1);
  if (!/^[0-9a-f]{64}$/.test(secret)) {
    status.textContent = 'This link is incomplete: the part after # is missing or damaged.';
    return;
  }
  var body = new URLSearchParams();
  body.set('secret', secret);
  fetch('/s/' + link + '/open', { method: 'POST', body: body, credentials: 'same-origin' })
    .then(function (r) {
      if (r.status === 204) {
        var video = document.getElementById('share-video');
        var download = document.getElementById('share-download');
        video.src = '/s/' + link + '/video.mp4';
        video.hidden = false;
        download.href = '/s/' + link + '/download';
        download.hidden = false;
        status.textContent = '';
      } else if (r.status === 429) {
        status.textContent = 'This link was opened too often just now (from here, or by everyone it was sent to); wait a while and try again.';
      } else {
        status.textContent = 'This link does not work: it was withdrawn, has expired or was used up.';
      }
    }, function () {
      status.textContent = 'Porchlight could not be reached.';
    });
})();
