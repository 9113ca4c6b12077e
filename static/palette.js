/* The command palette: Ctrl+K or "/" (or the Find button) → find a unit or a page, then open
   it, follow its logs or run one of its actions. Contract: static/README.md */
(() => {
'use strict';
const d = document, W = window;
const dlg = d.getElementById('palette'), input = d.getElementById('palette-input');
const list = d.getElementById('palette-list');
if (!dlg || !input || !list) return;
const url = p => new URL(p, d.baseURI).href;

// The units, fetched when the palette opens (and again if older than 30 s).
let units = [], fetched = 0, loading = null;
const loadUnits = () => {
  if (Date.now() - fetched < 30000) return Promise.resolve();
  return loading = loading || fetch(url('api/v1/units?type=all'), { credentials: 'same-origin' })
    .then(r => r.ok ? r.json() : Promise.reject(r.status))
    .then(us => { units = us.map(u => ({ name: u.name, desc: u.description || '', state: u.active_state || '' })); fetched = Date.now(); })
    .catch(() => { })
    .finally(() => { loading = null; });
};
const pages = () => [...d.querySelectorAll('.top-nav a')].map(a => ({ label: a.textContent.trim(), href: a.getAttribute('href') }));

// Fuzzy match: every typed character in order; earlier, consecutive and word-start hits score
// higher. null when not every character is found.
const score = (q, text) => {
  const t = text.toLowerCase();
  let s = 0, at = -1, run = 0;
  for (const c of q) {
    const i = t.indexOf(c, at + 1);
    if (i < 0) return null;
    run = i === at + 1 ? run + 1 : 0;
    s += 1 + run * 2 + (i === 0 || /[^a-z0-9]/.test(t[i - 1]) ? 3 : 0) - Math.min(i - at - 1, 5) * 0.2;
    at = i;
  }
  return s - t.length * 0.01;
};

// What the list shows: matches for the query, or one unit's choices.
let items = [], active = 0, unit = null;
const option = (it, i) => {
  const li = d.createElement('li');
  li.id = 'palette-opt-' + i;
  li.setAttribute('role', 'option');
  li.className = 'palette-item' + (it.danger ? ' danger' : '');
  const main = d.createElement('span');
  main.className = 'palette-label';
  main.textContent = it.label;
  li.append(main);
  if (it.note) {
    const n = d.createElement('span');
    n.className = 'palette-note';
    n.textContent = it.note;
    if (it.state) n.dataset.state = it.state;
    li.append(n);
  }
  li.addEventListener('mousedown', e => e.preventDefault());
  li.addEventListener('click', () => { active = i; choose(); });
  return li;
};
const render = () => {
  list.replaceChildren(...items.map(option));
  if (!items.length) {
    const li = d.createElement('li');
    li.className = 'palette-empty muted';
    li.textContent = unit ? 'No actions.' : loading ? 'Loading units…' : 'Nothing matches.';
    list.append(li);
  }
  mark();
};
const mark = () => {
  active = Math.max(0, Math.min(active, items.length - 1));
  [...list.children].forEach((li, i) => li.setAttribute('aria-selected', i === active && items.length ? 'true' : 'false'));
  const cur = items.length && d.getElementById('palette-opt-' + active);
  if (cur) { input.setAttribute('aria-activedescendant', cur.id); cur.scrollIntoView({ block: 'nearest' }); }
  else input.removeAttribute('aria-activedescendant');
};
const search = () => {
  const q = input.value.trim().toLowerCase().replace(/\s+/g, '');
  const found = [];
  for (const p of pages()) {
    const s = q ? score(q, p.label) : 0;
    if (s !== null) found.push({ s: s + 1, label: p.label, note: 'page', go: p.href });
  }
  if (q) for (const u of units) {
    const s = Math.max(score(q, u.name) ?? -1e9, (score(q, u.desc) ?? -1e9) - 4);
    if (s > -1e9) found.push({ s, label: u.name, note: u.state, state: u.state, unit: u });
  }
  found.sort((a, b) => b.s - a.s);
  items = found.slice(0, 30);
  active = 0;
  render();
};

// One unit's choices: open, follow logs, then the actions its row offers (the same
// buttons, so the same confirmations; the server refuses what is not allowed).
const unitPath = n => 'units/' + encodeURIComponent(n);
let query = '';
const openUnit = u => {
  unit = u;
  query = input.value;
  input.value = '';
  input.placeholder = u.name + ': open, logs or an action…';
  items = [
    { label: 'Open ' + u.name, go: unitPath(u.name) },
    { label: 'Follow logs of ' + u.name, go: 'logs?units=' + encodeURIComponent(u.name) },
  ];
  active = 0;
  render();
  fetch(url('ui/' + unitPath(u.name) + '/row'), { credentials: 'same-origin', headers: { 'HX-Request': 'true' } })
    .then(r => r.ok ? r.text() : Promise.reject(r.status))
    .then(html => {
      if (unit !== u) return;
      const t = d.createElement('template');
      t.innerHTML = html;
      for (const b of t.content.querySelectorAll('button[data-post]'))
        items.push({ label: b.textContent.trim() + ' ' + u.name, post: b.dataset.post, confirm: b.dataset.confirm, danger: b.classList.contains('danger') });
      render();
    })
    .catch(() => { });
};

// Back from a unit's choices to the matches it was chosen from, on it.
const back = () => {
  const from = unit;
  unit = null;
  input.placeholder = 'Type a unit or a page…';
  input.value = query;
  search();
  active = Math.max(0, items.findIndex(it => it.unit === from));
  mark();
};

const choose = () => {
  const it = items[active];
  if (!it) return;
  if (it.unit) return openUnit(it.unit);
  if (it.go) { close(); location.href = url(it.go); return; }
  if (it.post) {
    if (it.confirm && !confirm(it.confirm)) return input.focus();
    close();
    // As the row's own button would: the answer replaces the row if this page shows it.
    const row = [...d.querySelectorAll('.unit-row')].find(r => r.dataset.name === unit.name);
    let sink = row;
    if (!sink) { sink = d.createElement('div'); sink.hidden = true; d.body.append(sink); }
    W.htmx.ajax('POST', it.post, { source: row || d.body, target: sink, swap: row ? 'outerHTML' : 'innerHTML' })
      .finally(() => { if (!row) sink.remove(); });
  }
};

let opener = null;
const open = () => {
  if (dlg.open) return;
  opener = d.activeElement;
  unit = null;
  input.value = '';
  input.placeholder = 'Type a unit or a page…';
  dlg.showModal();
  input.focus();
  search();
  loadUnits().then(() => { if (dlg.open && !unit) search(); });
};
const close = () => { if (dlg.open) dlg.close(); };
dlg.addEventListener('close', () => { if (opener && opener.isConnected) opener.focus(); });
dlg.addEventListener('click', e => { if (e.target === dlg) close(); });

input.addEventListener('input', () => {
  if (!unit) return search();
  // Typing in a unit's choices narrows them.
  const q = input.value.trim().toLowerCase();
  [...list.children].forEach((li, i) => { li.hidden = !!q && score(q, items[i]?.label || '') === null; });
  const first = [...list.children].findIndex(li => !li.hidden);
  if (first >= 0) { active = first; mark(); }
});
input.addEventListener('keydown', e => {
  const visible = [...list.children].map((li, i) => li.hidden ? -1 : i).filter(i => i >= 0 && i < items.length);
  const at = visible.indexOf(active);
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    if (!visible.length) return;
    active = visible[(at + (e.key === 'ArrowDown' ? 1 : visible.length - 1)) % visible.length];
    mark();
  } else if (e.key === 'Home' || e.key === 'End') {
    if (!visible.length || input.value) return;
    e.preventDefault();
    active = e.key === 'Home' ? visible[0] : visible[visible.length - 1];
    mark();
  } else if (e.key === 'Enter') {
    e.preventDefault();
    choose();
  } else if (e.key === 'Escape') {
    e.preventDefault();
    // Out of a unit's choices first, then closed.
    if (unit) back(); else close();
  }
});
// The form only exists for the input's semantics: Enter is handled above.
dlg.querySelector('form')?.addEventListener('submit', e => e.preventDefault());

const typing = t => t && (t.isContentEditable || /^(input|textarea|select)$/i.test(t.tagName));
d.addEventListener('keydown', e => {
  if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') { e.preventDefault(); dlg.open ? close() : open(); }
  else if (e.key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey && !typing(e.target) && !dlg.open) { e.preventDefault(); open(); }
});
d.addEventListener('click', e => { if (e.target.closest?.('.palette-open')) open(); });
})();
