// Shared by every page: the words of the page's language, times in the configured zone, the write
// token (kept in localStorage once entered), JSON calls with it, element building with
// `textContent` only (no device value is ever parsed as HTML), and the live-update stream.
const dw = {
  words: {},
  tz: 'UTC',
  token() { const f = document.querySelector('input[name=token]'); const v = f && f.value ? f.value : (localStorage.getItem('dustwatch-token') || ''); return v; },
  remember(t) { if (t) localStorage.setItem('dustwatch-token', t); },
  async call(method, url, body) {
    const t = dw.token();
    const r = await fetch(url, { method, headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + t }, body: body === undefined ? undefined : JSON.stringify(body) });
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
};
const live = { onSites: null, onAlerts: null, onLevel: null, updates: 0 };
(function () {
  const w = document.getElementById('dw-words');
  if (w) { try { dw.words = JSON.parse(w.textContent); } catch (e) { dw.words = {}; } }
  if (document.documentElement.dataset.tz) dw.tz = document.documentElement.dataset.tz;
})();
document.addEventListener('DOMContentLoaded', () => {
  dw.fill();
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
