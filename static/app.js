/* unitdeck glue, loaded with defer after htmx + htmx-ext-sse. Contract: static/README.md */
(() => {
'use strict';
const d = document, B = d.body, W = window;
const all = (s, r) => [...(r || d).querySelectorAll(s)];
const on = (t, f, o) => d.addEventListener(t, f, o);
const mk = (tag, props) => Object.assign(d.createElement(tag), props);
const resync = () => W.htmx && htmx.trigger(B, 'unitdeck:resync');

// The Content-Security-Policy allows no eval, inline script or inline style: htmx must not
// need them (hx-on, js: values, its injected indicator <style>, scripts in swapped HTML).
if (W.htmx) Object.assign(htmx.config, { allowEval: false, allowScriptTags: false, includeIndicatorStyles: false });
// 422 = a form re-rendered with .field-error: swap it
if (W.htmx) htmx.config.responseHandling.unshift({ code: '422', swap: true });
// Swapped-in content is processed (its sse-swap listeners registered) when it settles:
// with htmx's default 20 ms a row's next live update within that time was lost.
if (W.htmx) htmx.config.defaultSettleDelay = 0;

// Live streams end with the page. Chrome keeps left pages in its back/forward cache with
// their EventSources open, and HTTP/1.1 allows 6 connections per host: a few pages later
// every request stalled. A page restored from that cache reloads for a fresh view.
const streams = new Set();
if (W.htmx) htmx.createEventSource = u => {
  const s = new EventSource(u, { withCredentials: true });
  s.addEventListener('changed', () => { if (reloading) stale = true; });
  streams.add(s);
  return s;
};
W.addEventListener('pagehide', () => { streams.forEach(s => s.close()); streams.clear(); });
W.addEventListener('pageshow', e => { if (e.persisted) location.reload(); });

// toasts: they never take a click (they may sit over a button); they go after 5 s
const toast = (kind, msg) => {
  let box = d.getElementById('toasts');
  if (!box) B.append(box = mk('div', { id: 'toasts' }));
  const t = mk('div', { className: 'toast' + (kind === 'ok' || kind === 'err' ? ' ' + kind : ''), textContent: msg ?? '' });
  t.setAttribute('role', 'status');
  box.append(t);
  setTimeout(() => t.remove(), 5000);
};
on('toast', e => { const x = e.detail || {}; toast(x.kind, x.message ?? x.value); });
on('htmx:responseError', e => {
  const x = e.detail.xhr;
  if (!/toast/.test(x.getResponseHeader('HX-Trigger') || '')) toast('err', 'Request failed: HTTP ' + x.status);
});
on('htmx:sendError', () => toast('err', 'Network error'));
// A live update may replace a row while one of its buttons' requests runs: htmx then
// fires the answer's events (toast, errors) on the detached button and swaps into the
// old row. Redo both against the page as it is now.
on('htmx:beforeSend', e => {
  const { elt, xhr: x, target: t } = e.detail;
  let lost = false;
  x.addEventListener('readystatechange', () => { if (x.readyState === 4) lost = !elt.isConnected; });
  x.addEventListener('loadend', () => {
    if (!lost) return;
    let m; try { m = JSON.parse(x.getResponseHeader('HX-Trigger')).toast; } catch { }
    if (m) toast(m.kind, m.message);
    else if (!x.status) toast('err', 'Network error');
    else if (x.status >= 400) toast('err', 'Request failed: HTTP ' + x.status);
    const now = t && t.id && d.getElementById(t.id);
    if (now && now !== t && x.status === 200 && t.matches('.unit-row, .job-row')) htmx.swap(now, x.responseText, { swapStyle: 'outerHTML' });
  });
});

// Row actions: one delegated handler rather than htmx wiring up every button of every row
// at page load (hundreds on a full dashboard). The answer is the new row.
on('click', e => {
  const b = e.target.closest?.('button[data-post]');
  if (!b || b.disabled || !W.htmx) return;
  if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
  b.disabled = true;
  // The answer is the row: the button's own, or the one data-target names (a button
  // outside the row, such as "Restart now to apply").
  const row = b.dataset.target ? d.querySelector(b.dataset.target) : b.closest('.unit-row, .job-row');
  const id = row && row.id, pin = b.matches('.pin');
  htmx.ajax('POST', b.dataset.post, { source: b, target: row, swap: 'outerHTML' })
    .finally(() => {
      b.disabled = false;
      // The row was replaced: keep a keyboard user on its pin button.
      if (pin && !b.isConnected) d.getElementById(id)?.querySelector('.pin')?.focus();
    });
});

// A submit button with data-confirm-submit asks first.
on('submit', e => {
  const q = e.submitter?.dataset.confirmSubmit;
  if (q && !confirm(q)) e.preventDefault();
});
// <select data-submit-on-change> submits its form; [data-copy=ID] copies that field's value
on('change', e => { if (e.target.matches('select[data-submit-on-change]')) e.target.form.submit(); });
on('click', e => {
  const b = e.target.closest?.('[data-copy]'), i = b && d.getElementById(b.dataset.copy);
  if (!i) return;
  i.select();
  const ok = () => toast('ok', 'Copied'), old = () => { if (d.execCommand('copy')) ok(); };
  navigator.clipboard ? navigator.clipboard.writeText(i.value).then(ok, old) : old();
});

// Connection banner: shown while a live stream is down, whatever navigator.onLine says (it
// is false on a machine with only loopback, where a local unitdeck works fine). Resync when
// a stream recovers.
const bad = new Set();
const banner = () => {
  let b = d.querySelector('.conn-banner');
  if (!b) {
    B.prepend(b = mk('div', { className: 'conn-banner', textContent: 'Connection lost — reconnecting…' }));
    b.setAttribute('role', 'status');
  }
  b.classList.toggle('show', bad.size > 0);
};
on('htmx:sseError', e => {
  bad.add(e.target); banner();
  // A log stream htmx has to reopen (the browser gave up on it after an HTTP error) gets no
  // Last-Event-ID: have it continue after the last line shown rather than from a backlog,
  // which misses what came meanwhile beyond its length.
  const l = e.target, shown = l.matches?.('.log') && l.querySelectorAll('[data-cursor]');
  if (!shown || !shown.length) return;
  const u = new URL(l.getAttribute('sse-connect'), d.baseURI);
  u.searchParams.set('after', shown[shown.length - 1].dataset.cursor);
  l.setAttribute('sse-connect', u.pathname + u.search);
});
on('htmx:sseOpen', e => { if (bad.delete(e.target)) resync(); banner(); });
on('htmx:sseClose', e => { bad.delete(e.target); banner(); });

// A reload of the rows ([data-reload]) answers with them as they were when it was asked
// for: a live update arriving meanwhile would be swapped over by that older answer, so
// reload once more after it. Every row update comes after a `changed` event, heard on the
// stream itself: htmx's own events miss updates to rows the page does not have yet, and
// htmx:sseMessage fires on the row replaced, detached by then.
let reloading = 0, stale = false;
on('htmx:beforeRequest', e => { if (e.detail.elt.matches?.('[data-reload]')) { reloading++; stale = false; } });
on('htmx:afterRequest', e => {
  if (!e.detail.elt.matches?.('[data-reload]')) return;
  reloading = Math.max(0, reloading - 1);
  if (!reloading && stale) { stale = false; resync(); }
});

// client-side filter of .unit-row, kept in ?q=&state=
const P = new URLSearchParams(location.search);
let fq = P.get('q') || '', fs = P.get('state') || '';
const field = el => el.matches('select,input');
const filter = () => {
  const rows = all('.unit-row'), q = fq.toLowerCase(), st = fs.split(/[\s,]+/).filter(Boolean);
  let n = 0;
  all('[data-filter-text]').forEach(i => { if (i !== d.activeElement) i.value = fq; });
  all('[data-filter-state]').forEach(el => {
    if (field(el)) { if (el !== d.activeElement) el.value = fs; return; }
    const a = el.dataset.filterState === fs;
    el.classList.toggle('active', a); el.setAttribute('aria-pressed', a);
  });
  rows.forEach(r => {
    const s = r.dataset, ok = (!q || ((s.name || '') + ' ' + (s.desc || '')).toLowerCase().includes(q)) &&
      (!st.length || st.includes(s.state));
    r.hidden = !ok; n += ok;
  });
  all('[data-filter-count]').forEach(c => c.textContent = n + ' of ' + rows.length);
  all('[data-filter-empty]').forEach(c => c.hidden = n > 0 || !rows.length);
};
// Pinned rows ([data-pinned]) first, each group in the order it has; moves only when needed.
const arrange = () => all('.unit-list').forEach(l => {
  const rows = [...l.children].filter(r => r.matches('.unit-row'));
  const pinned = rows.filter(r => r.hasAttribute('data-pinned'));
  if (pinned.every((r, i) => rows[i] === r)) return;
  const first = rows.find(r => !r.hasAttribute('data-pinned')), focused = d.activeElement;
  pinned.forEach(r => l.insertBefore(r, first));
  // A moved element loses the focus: give it back.
  if (focused && focused !== d.activeElement && l.contains(focused)) focused.focus();
});
const setFilter = (q, s) => {
  fq = q; fs = s; filter();
  const u = new URL(location.href), p = u.searchParams;
  q ? p.set('q', q) : p.delete('q');
  s ? p.set('state', s) : p.delete('state');
  history.replaceState(history.state, '', u);
};
on('input', e => { if (e.target.matches('[data-filter-text]')) setFilter(e.target.value, fs); });
on('change', e => { if (e.target.matches('[data-filter-state]')) setFilter(fq, e.target.value); });
on('click', e => {
  const c = e.target.closest?.('[data-filter-state]');
  if (c && !field(c)) { e.preventDefault(); setFilter(fq, c.dataset.filterState); }
});
let raf = 0;
for (const t of ['htmx:afterSwap', 'htmx:oobAfterSwap', 'htmx:sseMessage'])
  on(t, () => { raf = raf || requestAnimationFrame(() => { raf = 0; arrange(); filter(); times(); notifyUi(); }); });

// logs: follow the tail unless scrolled up; cap at 5000 lines
const follow = new WeakMap(), seenCursors = new WeakMap();
const btn = l => {
  let b = l.nextElementSibling;
  if (b && b.matches('.log-follow')) return b;
  b = mk('button', { type: 'button', className: 'btn small log-follow', hidden: true, textContent: '↓ new lines' });
  b.onclick = () => { follow.set(l, true); l.scrollTop = l.scrollHeight; b.hidden = true; };
  l.after(b);
  return b;
};
const grew = l => {
  // Reading older lines (scrolled up) keeps up to 4 times as many.
  const following = follow.get(l) !== false;
  const lines = l.querySelectorAll('.log-line'), extra = lines.length - (following ? 5000 : 20000), h = l.scrollHeight;
  for (let i = 0; i < extra; i++) {
    const p = lines[i].previousElementSibling;
    if (p && p.matches('.log-gap')) p.remove();
    seenCursors.get(l)?.delete(lines[i].dataset.cursor);
    lines[i].remove();
  }
  if (following) l.scrollTop = l.scrollHeight;
  else { if (extra > 0) l.scrollTop -= h - l.scrollHeight; btn(l).hidden = false; }
};
// Older lines when scrolled to the top: the view's data-older URL with before=<first cursor>.
const older = async l => {
  const first = l.querySelector('.log-line[data-cursor]');
  if (!first || !l.dataset.older || l.dataset.olderDone || l.dataset.loading) return;
  l.dataset.loading = '1';
  try {
    const u = new URL(l.dataset.older, d.baseURI);
    u.searchParams.set('before', first.dataset.cursor);
    const r = await fetch(u, { credentials: 'same-origin' });
    if (!r.ok) { toast('err', 'Older lines: HTTP ' + r.status); return; }
    const t = d.createElement('template');
    t.innerHTML = await r.text();
    if (!t.content.querySelector('.log-line')) { l.dataset.olderDone = '1'; return; }
    const h = l.scrollHeight, top = l.scrollTop;
    l.prepend(t.content);
    l.scrollTop = top + l.scrollHeight - h;
  } catch { toast('err', 'Network error'); } finally { delete l.dataset.loading; }
};
on('scroll', e => {
  const l = e.target;
  if (!l.matches?.('.log')) return;
  const end = l.scrollHeight - l.scrollTop - l.clientHeight < 24;
  follow.set(l, end);
  if (end) btn(l).hidden = true;
  if (l.scrollTop < 48) older(l);
}, true);
new MutationObserver(ms => {
  const logs = new Set();
  for (const m of ms) for (const n of m.addedNodes) {
    if (n.nodeType !== 1) continue;
    // A stream reopened without Last-Event-ID resends its backlog: keep one copy of each entry.
    const c = n.dataset && n.dataset.cursor, box = m.target.closest('.log');
    if (c && box) {
      const seen = seenCursors.get(box) || seenCursors.set(box, new Set()).get(box);
      if (seen.has(c)) { n.remove(); continue; }
      seen.add(c);
    }
    const l = m.target.closest('.log');
    if (l) logs.add(l);
    [n, ...all('.log', n)].forEach(x => x.matches('.log') && logs.add(x));
  }
  logs.forEach(grew);
}).observe(B, { childList: true, subtree: true });

// [data-local-time] → "3 min ago"
const ago = ms => {
  const s = Math.round(ms / 1000), a = Math.abs(s);
  if (a < 45) return s > 5 ? a + ' s ago' : s < -5 ? 'in ' + a + ' s' : 'just now';
  const [v, u] = a < 5400 ? [a / 60, 'min'] : a < 129600 ? [a / 3600, 'h'] : [a / 86400, 'd'];
  const x = Math.round(v) + ' ' + u;
  return s < 0 ? 'in ' + x : x + ' ago';
};
const times = () => {
  all('[data-local-time]').forEach(el => {
    const t = Date.parse(el.dataset.localTime);
    if (t === t) { el.textContent = ago(Date.now() - t); el.title = new Date(t).toLocaleString(); }
  });
  // [data-local-date] → the date and time in the reader's zone
  all('[data-local-date]').forEach(el => {
    const t = Date.parse(el.dataset.localDate);
    if (t === t) el.textContent = new Date(t).toLocaleString([], { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
  });
};

// Desktop / phone notifications (opt-in per browser, [data-notify-toggle] on /settings):
// while a tab is open, /ui/alerts brings the events channels get. Phones show them only
// through a service worker (static/sw.js), which also opens the run's page on a tap.
const NOTE = 'unitdeck.notify', can = 'Notification' in W && W.isSecureContext;
let alerts = null;
const noting = () => can && localStorage.getItem(NOTE) === 'on' && Notification.permission === 'granted';
const worker = () => navigator.serviceWorker ? navigator.serviceWorker.register('static/sw.js').catch(() => null) : Promise.resolve(null);
const show = a => {
  const u = new URL(a.url, location.href), title = (a.unit || 'unitdeck') + ': ' + a.event.replace(/_/g, ' ');
  const opts = { body: a.message, tag: a.event + ' ' + (a.unit || '') + ' ' + a.time, data: { url: u.pathname + u.search + u.hash } };
  W.unitdeck.lastAlert = a;
  worker().then(r => {
    if (r) return r.showNotification(title, opts);
    const n = new Notification(title, opts);
    n.onclick = () => { W.focus(); location.assign(opts.data.url); };
  }).catch(() => {});
};
const listen = () => {
  if (alerts || !noting()) return;
  alerts = new EventSource('ui/alerts', { withCredentials: true });
  streams.add(alerts);
  alerts.addEventListener('alert', e => { try { show(JSON.parse(e.data)); } catch { } });
};
const notifyUi = () => all('[data-notify-toggle]').forEach(b => {
  const s = d.querySelector('[data-notify-status]'), say = t => { if (s) s.textContent = t; };
  if (!can) return say('This page needs HTTPS (or localhost) and a browser with notifications.');
  b.hidden = false;
  b.textContent = noting() ? 'Turn off' : 'Turn on';
  say(Notification.permission === 'denied' ? "Blocked in this browser's settings for this site." :
    noting() ? 'On: this browser shows them while a unitdeck tab is open.' : 'Off in this browser.');
});
on('click', e => {
  const b = e.target.closest?.('[data-notify-toggle]');
  if (!b || !can) return;
  if (noting()) {
    localStorage.removeItem(NOTE);
    if (alerts) { alerts.close(); streams.delete(alerts); alerts = null; }
    return notifyUi();
  }
  Notification.requestPermission().then(p => {
    if (p === 'granted') { localStorage.setItem(NOTE, 'on'); worker(); listen(); toast('ok', 'Notifications on'); }
    else toast('err', 'The browser did not allow notifications');
    notifyUi();
  });
});

// --- the journal explorer (/logs): the URL is the whole state ----------------------------
// The last view is remembered per browser: /logs without a query opens it again.
const LOGS_KEY = 'unitdeck-logs';
if (location.pathname === new URL('logs', d.baseURI).pathname) {
  let saved = null;
  try { saved = localStorage.getItem(LOGS_KEY); } catch { }
  if (!location.search && saved) {
    // Nothing of this page is wanted: no count, no stream.
    all('[hx-trigger=load], [sse-connect]').forEach(e => e.remove());
    location.replace(new URL('logs?' + saved, d.baseURI));
  } else {
    try { localStorage.setItem(LOGS_KEY, location.search.slice(1)); } catch { }
  }
}
// The form goes to logs with only the fields that say something; a custom time replaces
// the preset. Its selects and checkboxes apply at once.
on('submit', e => {
  const f = e.target;
  if (!f.matches?.('form[data-explorer]')) return;
  e.preventDefault();
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(f)) if (v !== '') p.append(k, v);
  if (p.has('since') || p.has('until')) p.delete('range');
  location.assign(new URL('logs' + (p.size ? '?' + p : ''), d.baseURI));
});
on('change', e => {
  const f = e.target.form;
  if (f?.matches('form[data-explorer]') && e.target.matches('select, [type=checkbox]')) f.requestSubmit();
});
// Histogram: a tap follows the bar's own link (zoom to it); with a mouse or pen, a drag
// across bars zooms to all of them. Touch drags scroll the page.
let drag = null;
const selRect = (svg, a, b, n) => {
  const s = svg.querySelector('.sel');
  s.setAttribute('x', (Math.min(a, b) * 600 / n).toFixed(2));
  s.setAttribute('width', ((Math.abs(b - a) + 1) * 600 / n).toFixed(2));
  s.classList.add('on');
};
on('pointerdown', e => {
  const svg = e.target.closest?.('svg.hist');
  if (!svg || e.pointerType === 'touch' || e.button !== 0) return;
  const bars = all('a.bar', svg), box = svg.getBoundingClientRect();
  const at = x => Math.max(0, Math.min(bars.length - 1, Math.floor((x - box.left) / box.width * bars.length)));
  drag = { svg, bars, at, from: at(e.clientX), to: at(e.clientX), x: e.clientX, moved: false };
  e.preventDefault();
});
on('pointermove', e => {
  if (!drag) return;
  drag.to = drag.at(e.clientX);
  if (Math.abs(e.clientX - drag.x) > 4) drag.moved = true;
  if (drag.moved) selRect(drag.svg, drag.from, drag.to, drag.bars.length);
});
on('pointerup', () => {
  const g = drag;
  drag = null;
  if (!g || !g.moved) return;
  g.svg.dataset.dragged = '1';
  const [a, b] = [Math.min(g.from, g.to), Math.max(g.from, g.to)];
  const u = new URL(g.bars[a].getAttribute('href'), d.baseURI);
  u.searchParams.set('until', g.bars[b].dataset.until);
  location.assign(u);
});
on('click', e => {
  const svg = e.target.closest?.('svg.hist');
  if (svg?.dataset.dragged) { delete svg.dataset.dragged; e.preventDefault(); }
}, true);
// A count that failed says so where it would have been.
on('htmx:responseError', e => {
  const c = e.detail.target?.id === 'log-summary' && e.detail.target.querySelector('.counting');
  if (c) c.textContent = 'Could not count the entries (HTTP ' + e.detail.xhr.status + ').';
});
// On a phone the facets start folded: the lines come first.
on('htmx:afterSwap', e => {
  if (e.detail.target.id === 'log-summary' && matchMedia('(max-width: 759.98px)').matches)
    all('details.facet', e.detail.target).forEach(x => { x.open = false; });
});

W.unitdeck = { toast, filter: setFilter, resync };
filter(); times(); banner(); all('.log').forEach(grew); notifyUi(); listen();
setInterval(times, 30000);
})();
