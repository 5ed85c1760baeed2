// Every script of the pages: the words of the page's language, times in the configured zone, the
// write token (kept in localStorage once entered), JSON calls with it, element building with
// `textContent` only (no device value is ever parsed as HTML), the one live-update stream, and
// each page's own part (`dw.pages`, chosen by the body's `data-page`).
const dw = {
  words: {},
  tz: 'UTC',
  token() { const f = document.querySelector('input[name=token]'); const v = f && f.value ? f.value : (localStorage.getItem('dustwatch-token') || ''); return v; },
  remember(t) { if (t) localStorage.setItem('dustwatch-token', t); },
  async call(method, url, body) {
    const t = dw.token();
    // A signed-in browser writes with its session and the session's CSRF token (cookie dw_csrf).
    const headers = { 'Content-Type': 'application/json' };
    if (t) headers['Authorization'] = 'Bearer ' + t;
    const csrf = document.cookie.split('; ').find(c => c.startsWith('dw_csrf='));
    if (csrf) headers['X-CSRF-Token'] = csrf.slice(8);
    const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let data = null; try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
    if (!r.ok) throw new Error((data && data.error) || ('HTTP ' + r.status));
    dw.remember(t);
    return data;
  },
  el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) { if (k === 'class') e.className = v; else e.setAttribute(k, v); }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? '' : String(k)));
    return e;
  },
  // "2026-11-29 18:05" in the configured zone (the same form the server writes).
  time(ms) {
    if (ms == null) return '—';
    try {
      const p = Object.fromEntries(new Intl.DateTimeFormat('en-GB', { timeZone: dw.tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(ms)).map(x => [x.type, x.value]));
      return p.year + '-' + p.month + '-' + p.day + ' ' + p.hour + ':' + p.minute;
    } catch (e) { return new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + 'Z'; }
  },
  status(s) { return (dw.words.status && dw.words.status[s]) || s; },
  level(l) { return (dw.words.level && dw.words.level[l]) || l; },
  fill() { const t = localStorage.getItem('dustwatch-token'); document.querySelectorAll('input[name=token]').forEach(f => { if (t && !f.value) f.value = t; }); },
  // A site's card (the overview's, the site page's) brought up to date from a `sites` event.
  card(card, s) {
    card.className = 'card ' + s.status;
    const set = (f, v) => { const e = card.querySelector('[data-f=' + f + ']'); if (e) e.textContent = v; };
    set('status', dw.status(s.status)); set('pm25', s.pm25); set('pm10', s.pm10); set('tsp', s.tsp); set('noise', s.noise);
    set('age', s.age); set('aqi', s.aqi_text[document.documentElement.lang] || ''); set('alerts', s.alerts + ' ' + dw.words.open);
    const st = card.querySelector('[data-f=status]'); if (st) st.className = 'st ' + s.status;
    const a = card.querySelector('[data-f=aqi]'); if (a) { a.style.background = s.aqi_colour; a.style.color = s.aqi_ink; }
    const b = card.querySelector('[data-f=alerts]'); if (b) b.className = 'badge' + (s.alerts ? '' : ' none');
  },
  pages: {},
};
const live = { onSites: null, onAlerts: null, onLevel: null, updates: 0 };
(function () {
  const w = document.getElementById('dw-words');
  if (w) { try { dw.words = JSON.parse(w.textContent); } catch (e) { dw.words = {}; } }
  if (document.documentElement.dataset.tz) dw.tz = document.documentElement.dataset.tz;
})();
document.addEventListener('DOMContentLoaded', () => {
  dw.fill();
  const page = dw.pages[document.body.dataset.page];
  if (page) page();
  const badge = document.getElementById('live');
  if (!badge || !document.body.hasAttribute('data-live')) return;
  const es = new EventSource('/events');
  es.onopen = () => { badge.textContent = '● ' + dw.words.live; };
  es.onerror = () => { badge.textContent = '○ ' + dw.words.reconnecting; };
  es.addEventListener('sites', (ev) => {
    const d = JSON.parse(ev.data); live.updates++;
    if (d.now) window.dwNow = d.now;
    badge.textContent = '● ' + dw.words.live + ' ' + (d.now ? dw.time(d.now) : '');
    if (live.onSites) live.onSites(d.sites);
  });
  es.addEventListener('alerts', (ev) => { if (live.onAlerts) live.onAlerts(Number(ev.data)); });
  es.addEventListener('level', (ev) => {
    const [l, since] = ev.data.split(' ');
    const h = document.getElementById('city-level'); h.textContent = dw.level(l); h.className = 'level ' + l;
    if (live.onLevel) live.onLevel(l, since ? Number(since) : null);
  });
});

// The overview: set the city level; cards, map dots, counts and the worst-first order follow the
// stream.
dw.pages.overview = () => {
  document.getElementById('level-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target, msg = document.getElementById('level-msg');
    const body = { level: f.level.value };
    if (window.dwNow) body.ts = window.dwNow;
    try { const r = await dw.call('PUT', '/api/city/level', body); msg.textContent = dw.words.set_to + ' ' + dw.level(r.level); }
    catch (e) { msg.textContent = e.message; }
  });
  const dotColour = { ok: '#2e7d32', warning: '#f9a825', violation: '#c62828', unregistered: '#6a1b9a' };
  const urgency = ['violation', 'warning', 'offline', 'unregistered', 'ok'];
  const relist = (sites) => {
    const n = {}; for (const s of sites) n[s.status] = (n[s.status] || 0) + 1;
    for (const k of ['violation', 'warning', 'offline', 'ok']) { const e = document.querySelector('.count-' + k + ' b'); if (e) e.textContent = n[k] || 0; }
    const rank = (s) => [urgency.indexOf(s.status), -s.alerts, -(s.aqi || 0), s.id];
    const sorted = [...sites].sort((a, b) => { const x = rank(a), y = rank(b); for (let i = 0; i < 4; i++) { if (x[i] < y[i]) return -1; if (x[i] > y[i]) return 1; } return 0; });
    const grid = document.getElementById('sites');
    for (const s of sorted) { const c = grid.querySelector('.card[data-site="' + CSS.escape(s.id) + '"]'); if (c) grid.appendChild(c); }
  };
  live.onSites = (sites) => {
    for (const s of sites) {
      const dot = document.querySelector('circle[data-site="' + CSS.escape(s.id) + '"]');
      if (dot) dot.setAttribute('fill', dotColour[s.status] || '#9e9e9e');
      const card = document.querySelector('.card[data-site="' + CSS.escape(s.id) + '"]');
      if (card) dw.card(card, s);
    }
    relist(sites);
  };
  live.onLevel = (l, since) => {
    const e = document.getElementById('level-now'); e.textContent = dw.level(l); e.className = 'level bigLevel ' + l;
    const s = document.getElementById('level-since'); if (s && since) s.textContent = dw.time(since);
  };
};

// A site page: its card follows the stream, and its chart slides to the newest data.
dw.pages.site = () => {
  // On a phone the chart panels scroll sideways: start them at the newest data, on the right.
  const right = () => document.querySelectorAll('.panel').forEach(p => { p.scrollLeft = p.scrollWidth; });
  document.querySelectorAll('.panel img').forEach(i => { if (!i.complete) i.addEventListener('load', right, { once: true }); });
  right();
  window.addEventListener('resize', right);
  let lastChart = 0;
  live.onSites = (sites) => {
    for (const s of sites) {
      const card = document.querySelector('.card[data-site="' + CSS.escape(s.id) + '"]');
      if (card) dw.card(card, s);
    }
    // Redraw the chart at most every 15 s, sliding its window to the newest data.
    const img = document.getElementById('site-chart');
    if (img && Date.now() - lastChart > 15000) {
      lastChart = Date.now();
      const u = new URL(img.src, location.href);
      const span = Number(u.searchParams.get('to')) - Number(u.searchParams.get('from'));
      if (window.dwNow && span > 0) { u.searchParams.set('to', window.dwNow + 1); u.searchParams.set('from', window.dwNow + 1 - span); img.src = u.toString(); }
    }
  };
};

// The alerts page: acknowledge forms; the table reloads when the stream reports an alert change.
dw.pages.alerts = () => {
  const wireAcks = () => {
    document.querySelectorAll('form.ack').forEach(f => {
      if (f.dataset.wired) return; f.dataset.wired = '1';
      f.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const msg = f.querySelector('.msg');
        try {
          const r = await dw.call('POST', '/api/alerts/' + f.dataset.id + '/ack', { by: f.by.value, comment: f.comment.value });
          f.replaceWith(dw.el('span', { class: 'acked' }, '✔ ' + r.ack_by + ' — ' + (r.ack_comment || '')));
        } catch (e) { msg.textContent = e.message; }
      });
    });
  };
  wireAcks();
  live.onAlerts = async () => {
    const active = document.activeElement;
    if (active && active.closest && active.closest('form.ack')) return; // do not wipe what is being typed
    const u = new URL(location.href); u.searchParams.set('partial', '1');
    const r = await fetch(u); if (!r.ok) return;
    document.getElementById('alert-rows').innerHTML = await r.text();
    wireAcks();
  };
};

// A dashboard: its panels reload every `data-refresh-ms`.
dw.pages.dashboard = () => {
  const panels = document.getElementById('panels');
  const every = Number(panels && panels.dataset.refreshMs) || 60000;
  setInterval(() => document.querySelectorAll('img.dash').forEach(i => { i.src = i.dataset.src + '?t=' + Date.now(); }), every);
};

// Device commands from the site page (the section of src/web/commands.rs): send, then wait for
// the device's answer and show the page again.
document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('form.device-command').forEach(f => {
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const msg = f.querySelector('.msg');
      const body = { device: f.device.value, cmd: f.cmd.value };
      const n = Number(f.amount.value);
      if (body.cmd === 'sprinkle') body.duration_s = n * 60;
      if (body.cmd === 'set_interval') body.interval_s = n;
      try {
        const r = await dw.call('POST', '/api/sites/' + encodeURIComponent(f.dataset.site) + '/commands', body);
        msg.textContent = '… ' + r.id.slice(0, 8);
        for (let i = 0; i < 120; i++) {
          await new Promise(ok => setTimeout(ok, 1000));
          const c = await dw.call('GET', '/api/commands/' + r.id);
          if (c.state !== 'sent') break;
        }
        location.reload();
      } catch (e) { msg.textContent = e.message; }
    });
  });
});
