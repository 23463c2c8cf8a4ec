// The invitation's secret rides in the URL fragment, which is never sent to a server;
// copy it into the form so it is posted once, in the body.
(function () {
  'use strict';
  var field = document.getElementById('invitation');
  var secret = window.location.hash.slice(1);
  if (field && !field.value && /^[0-9a-f]{64}$/.test(secret)) {
    field.value = secret;
  }
})();
