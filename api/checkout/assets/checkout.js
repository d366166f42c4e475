// Checkout page behaviour: countdown, copy button, live status. Plain ES5-level JS, inlined under a CSP hash;
// the page is complete without it (rendered server-side, <noscript> refresh), this only keeps it live.
(function () {
  'use strict';
  var root = document.getElementById('checkout');
  if (!root || !window.fetch) return;
  var statusUrl = root.getAttribute('data-status-url');
  var expiresAt = Date.parse(root.getAttribute('data-expires-at'));
  // The countdown follows the server's clock, not the device's (which may be minutes off).
  var clockOffset = Number(root.getAttribute('data-server-time')) - Date.now();
  var countdown = document.getElementById('countdown');
  var announce = document.getElementById('announce');
  var OPEN_POLL_MS = 2000;
  var CLOSED_POLL_MS = 15000; // expired payments can still see late funds; final ones never change
  var FINAL = { confirmed: true, canceled: true, closed: true };

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }
  function formatLeft(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var clock = (h || d ? pad(m) : String(m)) + ':' + pad(s % 60);
    if (d) return d + 'd ' + pad(h) + ':' + clock;
    return h ? h + ':' + clock : clock;
  }
  function tick() {
    if (countdown) countdown.textContent = formatLeft(expiresAt - (Date.now() + clockOffset));
  }
  function setText(selector, value) {
    var els = root.querySelectorAll(selector);
    for (var i = 0; i < els.length; i++) if (els[i].textContent !== value) els[i].textContent = value;
  }
  function apply(s) {
    var changed = root.getAttribute('data-state') !== s.state;
    setText('.js-received', s.amount_received);
    setText('.js-due', s.amount_due);
    setText('.js-confs', String(s.confirmations));
    setText('.js-confs-required', String(s.confirmations_required));
    root.setAttribute('data-partial', s.partially_paid ? 'true' : 'false');
    root.setAttribute('data-state', s.state);
    expiresAt = Date.parse(s.expires_at);
    tick();
    if (changed && announce) {
      var visible = root.querySelector('.st-' + s.state);
      if (visible) announce.textContent = visible.textContent.replace(/\s+/g, ' ').trim();
    }
  }
  function schedule(ms) {
    window.setTimeout(poll, ms);
  }
  function poll() {
    var retryAfterMs = 0;
    fetch(statusUrl, { headers: { accept: 'application/json' }, credentials: 'omit' })
      .then(function (res) {
        var date = Date.parse(res.headers.get('date') || '');
        // Date has whole seconds: only re-anchor on a real disagreement, so the countdown does not jitter.
        if (!isNaN(date) && Math.abs(date + 500 - Date.now() - clockOffset) > 1500) clockOffset = date + 500 - Date.now();
        if (res.status === 429) retryAfterMs = (Number(res.headers.get('retry-after')) || 10) * 1000;
        if (!res.ok) throw new Error('status ' + res.status);
        return res.json();
      })
      .then(function (s) {
        apply(s);
        if (!FINAL[s.state]) schedule(s.state === 'pending' || s.state === 'confirming' ? OPEN_POLL_MS : CLOSED_POLL_MS);
      })
      .catch(function () {
        schedule(Math.max(retryAfterMs, 5000));
      });
  }

  var copy = document.getElementById('copy');
  var address = document.getElementById('address');
  var copied = document.getElementById('copied');
  if (copy && address) {
    copy.hidden = false;
    copy.addEventListener('click', function () {
      var text = address.textContent.trim();
      function done() {
        copied.textContent = 'Address copied';
        window.setTimeout(function () { copied.textContent = ''; }, 3000);
      }
      function selectIt() {
        var range = document.createRange();
        range.selectNodeContents(address);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        var ok = false;
        try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
        if (ok) done();
        else copied.textContent = 'Address selected: copy it with your keyboard';
      }
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, selectIt);
      else selectIt();
    });
  }

  tick();
  window.setInterval(tick, 1000);
  if (!FINAL[root.getAttribute('data-state')]) schedule(OPEN_POLL_MS);
})();
