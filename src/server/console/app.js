// The console: sign-in, a hash router (#/lanes, #/gates, ...) and one render function per page.
// Each page asks the API with the signed-in user's token; what a role may not see comes back as a
// 403 from the API, and the page says so instead of showing anything.

import { api, ApiError, purpose, setPurpose, signIn, signOut, signedIn } from './api.js';
import { barChart, el, formatMicros, formatValue, genericView, table } from './dom.js';
import {
  base64ToBytes,
  bytesToHex,
  decodeLeaf,
  hexToBytes,
  leafHash,
  verifyInclusion,
  verifyTreeHead,
  VerifyError,
} from './verify.js';

const PAGES = {
  lanes: { title: 'Lanes', render: renderLanes },
  gates: { title: 'Gates', render: renderGates },
  retention: { title: 'Retention', render: renderRetention },
  audit: { title: 'Audit', render: renderAudit },
  exports: { title: 'Exports', render: renderExports },
};

const main = document.getElementById('page');
const nav = document.getElementById('nav');
const session = document.getElementById('session');

function errorBox(error, what) {
  const text = error instanceof ApiError ? error.describe() : String(error?.message || error);
  const hint = error instanceof ApiError ? hintFor(error) : '';
  return el('div', { class: 'error', role: 'alert', 'data-code': error?.code || 'error' },
    el('strong', {}, `${what} failed: `), text, hint ? el('p', { class: 'hint' }, hint) : null);
}

function hintFor(error) {
  switch (error.code) {
    case 'unauthenticated':
    case 'token_expired':
    case 'token_revoked':
      return 'Sign in again with a valid token.';
    case 'forbidden':
    case 'out_of_scope':
      return 'Your role may not see this; the refusal is on the audit record.';
    case 'purpose_required':
      return 'State a purpose (top right) and try again.';
    case 'self_approval':
      return 'You requested this export; a different supervisor must approve it.';
    case 'conflict':
      return 'It is no longer pending (already approved, or the approval was replayed).';
    case 'expired':
      return 'It waited too long; the requester must ask again.';
    case 'too_many_requests':
    case 'overloaded':
      return 'The service is busy; try again shortly.';
    default:
      return '';
  }
}

// ---- Sign-in ----------------------------------------------------------------------------------

function renderSignIn() {
  nav.hidden = true;
  session.replaceChildren();
  const token = el('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off',
    required: true, placeholder: 'pct_…', spellcheck: 'false' });
  const stated = el('input', { id: 'purpose', name: 'purpose', type: 'text', maxlength: 512,
    placeholder: 'e.g. shift review', value: purpose() });
  const form = el('form', { id: 'signin', class: 'card' },
    el('h2', {}, 'Sign in'),
    el('p', {}, 'Use your API token. It is kept in this tab only (sessionStorage) and sent to ' +
      'this server alone; closing the tab forgets it.'),
    el('label', { for: 'token' }, 'API token'), token,
    el('label', { for: 'purpose' }, 'Purpose (recorded in the audit log with every request)'),
    stated,
    el('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!token.value.trim()) return;
    signIn(token.value, stated.value);
    if (!location.hash || location.hash === '#/') location.hash = '#/lanes';
    route();
  });
  main.replaceChildren(form);
  token.focus();
}

function renderSession() {
  const stated = el('input', { id: 'session-purpose', type: 'text', maxlength: 512,
    value: purpose(), placeholder: 'purpose', 'aria-label': 'Purpose' });
  stated.addEventListener('change', () => setPurpose(stated.value));
  session.replaceChildren(
    el('label', { for: 'session-purpose' }, 'Purpose'), stated,
    el('button', { type: 'button', id: 'signout', onclick: () => {
      signOut();
      location.hash = '#/';
      route();
    } }, 'Sign out'));
}

// ---- Router -------------------------------------------------------------------------------------

let generation = 0;  // a page render that finishes after the user moved on is dropped

async function route() {
  if (!signedIn()) {
    renderSignIn();
    return;
  }
  nav.hidden = false;
  renderSession();
  const name = (location.hash.match(/^#\/([a-z]+)/) || [])[1] || 'lanes';
  const page = PAGES[name] || PAGES.lanes;
  for (const link of nav.querySelectorAll('a')) {
    link.classList.toggle('current', link.getAttribute('href') === `#/${name}`);
  }
  document.title = `${page.title} — Portcullis console`;
  const mine = ++generation;
  const container = el('section', { id: `page-${name}`, 'aria-busy': 'true' },
    el('h2', {}, page.title), el('p', { class: 'loading' }, 'Loading…'));
  main.replaceChildren(container);
  const body = await page.render().catch((error) => errorBox(error, page.title));
  if (mine !== generation) return;
  container.replaceChildren(el('h2', {}, page.title), body);
  container.setAttribute('aria-busy', 'false');
  container.dataset.ready = 'true';
}

// Each section of a page loads on its own, so one refusal (a vendor's 403 on retention) does not
// blank the rest of the page.
async function section(title, load) {
  const box = el('section', { class: 'card' }, el('h3', {}, title));
  try {
    box.append(await load());
  } catch (error) {
    box.append(errorBox(error, title));
  }
  return box;
}

// ---- Lanes ------------------------------------------------------------------------------------------

// One lane's hourly series from /v1/stats/lanes: {reads_per_hour: [n, ...]} with the hours' starts
// in the top-level hour_starts_micros (or, tolerated, [{hour_start_micros, reads}] per lane).
function hourlySeries(lane, hourStarts) {
  const series = lane.reads_per_hour ?? lane.per_hour ?? lane.hourly ?? [];
  if (!Array.isArray(series)) return { values: [], labels: [] };
  const label = (micros, i) => (micros !== undefined ? `${formatMicros(micros).slice(11, 13)}h` : String(i));
  const values = [];
  const labels = [];
  series.forEach((point, i) => {
    if (typeof point === 'number') {
      values.push(point);
      labels.push(label(Array.isArray(hourStarts) ? hourStarts[i] : undefined, i));
    } else if (point && typeof point === 'object') {
      values.push(Number(point.reads ?? point.count ?? 0));
      labels.push(label(point.hour_start_micros, i));
    }
  });
  return { values, labels };
}

function lanesList(json, key) {
  const list = json?.[key];
  if (Array.isArray(list)) return list;
  if (list && typeof list === 'object') {
    return Object.entries(list).map(([name, value]) => ({ [key.replace(/s$/, '')]: name, ...value }));
  }
  return [];
}

async function renderLanes() {
  const stats = section('Plate reads per hour (last 24 h)', async () => {
    const json = await api('/v1/stats/lanes?hours=24');
    const lanes = lanesList(json, 'lanes');
    if (!lanes.length) return el('p', { class: 'empty' }, 'No plate reads in this period.');
    const out = el('div', { class: 'lanes' });
    for (const lane of lanes) {
      const { values, labels } = hourlySeries(lane, json.hour_starts_micros);
      const total = lane.total ?? lane.reads ?? values.reduce((a, b) => a + b, 0);
      const name = String(lane.lane ?? lane.id ?? '?');
      out.append(el('figure', { class: 'lane', 'data-lane': name },
        el('figcaption', {}, el('strong', {}, `Lane ${name}`), ' — ',
          el('span', { class: 'total', 'data-total': total }, formatValue('total', total)),
          ' reads'),
        barChart(values, { labels, title: `Lane ${name}: plate reads per hour` })));
    }
    return out;
  });
  const health = section('Device health', async () => {
    const json = await api('/v1/devices/health');
    const devices = Array.isArray(json) ? json : json.devices ?? json.lanes;
    if (!Array.isArray(devices)) return genericView(json);
    const note = el('p', { class: 'small' },
      json.node ? `As seen by node ${json.node}` : '',
      json.since_micros ? ` since ${formatMicros(json.since_micros)}` : '');
    if (!devices.length) return el('div', {}, note, el('p', { class: 'empty' }, 'No device has reported yet.'));
    const rows = devices.map((d) => {
      const row = { ...d };
      // {"decode": 2, "timeout": 1} -> "decode 2, timeout 1"; none -> 0.
      if (row.errors && typeof row.errors === 'object' && !Array.isArray(row.errors)) {
        const entries = Object.entries(row.errors);
        row.errors = entries.length ? entries.map(([k, v]) => `${k} ${v}`).join(', ') : 0;
      }
      delete row.last_read_micros;  // shown as last_read_at
      return row;
    });
    const first = ['lane', 'device', 'last_frame_micros', 'last_read_at', 'reads_last_hour', 'frames_total', 'errors'];
    const columns = first.filter((k) => rows.some((r) => k in r));
    for (const row of rows) for (const k of Object.keys(row)) if (!columns.includes(k)) columns.push(k);
    return el('div', {}, note, table(rows, { columns }));
  });
  return el('div', {}, await stats, await health);
}

// ---- Gates ------------------------------------------------------------------------------------------

async function renderGates() {
  const json = await api('/v1/stats/gates?hours=24');
  const gates = lanesList(json, 'gates');
  const out = el('div', {});
  if (!gates.length) {
    out.append(el('p', { class: 'empty' }, 'No gate decisions in this period.'));
    return out;
  }
  const overall = json.total && typeof json.total === 'object' ? [{ gate: 'all', ...json.total }] : [];
  for (const gate of [...overall, ...gates]) {
    const name = String(gate.gate ?? gate.id ?? '?');
    const decisions = gate.decisions && typeof gate.decisions === 'object' ? gate.decisions : {};
    const counts = Object.entries(decisions).filter(([, v]) => typeof v === 'number');
    let rate = gate.match_rate;
    if (typeof rate !== 'number') {
      const matches = decisions.match ?? gate.matches;
      const total = counts.reduce((a, [, v]) => a + v, 0);
      rate = typeof matches === 'number' && total > 0 ? matches / total : null;
    }
    const scalars = Object.entries(gate).filter(
      ([k, v]) => !['gate', 'id', 'decisions', 'match_rate'].includes(k) && typeof v !== 'object');
    out.append(el('section', { class: 'card gate', 'data-gate': name },
      el('h3', {}, name === 'all' && overall.length ? 'All gates' : `Gate ${name}`),
      el('p', { class: 'rate' }, 'Match rate: ',
        el('strong', { 'data-rate': rate ?? '' }, rate === null ? '—' : formatValue('match_rate', rate))),
      counts.length ? el('div', { class: 'decisions' },
        table(counts.map(([decision, count]) => ({ decision, count })),
          { caption: 'Decisions', className: 'compact' }),
        barChart(counts.map(([, v]) => v), { labels: counts.map(([k]) => k), barWidth: 56, gap: 12,
          height: 90, labelEvery: 1, title: `Gate ${name}: decisions` })) : null,
      scalars.length ? genericView(Object.fromEntries(scalars)) : null));
  }
  return out;
}

// ---- Retention --------------------------------------------------------------------------------------

function duration(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s)) return String(seconds);
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

async function renderRetention() {
  const json = await api('/v1/retention');
  const out = el('div', {},
    el('p', {}, 'What the retention policy will crypto-shred, and when (times in UTC). Shredding ' +
      'destroys a bucket\'s key, which makes every record sealed under it unreadable at once.'));
  if (!Array.isArray(json.classes) && !Array.isArray(json.schedule)) {
    out.append(genericView(json));
    return out;
  }
  if (Array.isArray(json.schedule)) {
    const rows = json.schedule.map((b) => ({ class: b.class, records: b.records,
      shred_at_micros: b.shred_at_micros, due: b.due, kek: b.kek }));
    out.append(el('section', { class: 'card', id: 'schedule' }, el('h3', {}, 'Schedule'),
      rows.length ? table(rows) : el('p', { class: 'empty' }, 'Nothing is waiting to be shredded.')));
  }
  if (Array.isArray(json.classes)) {
    const rows = json.classes.map((c) => ({
      name: c.name,
      kept_for: duration(c.retention_seconds),
      bucket: duration(c.bucket_seconds),
      covers: Array.isArray(c.covers) ? c.covers.map((x) => `${x.record_type}/${x.subject}`).join(', ') : '',
    }));
    out.append(el('section', { class: 'card', id: 'classes' }, el('h3', {}, 'Retention classes'), table(rows)));
  }
  if (json.complete === false) {
    out.append(el('p', { class: 'hint' }, 'The schedule is partial: the server stopped counting at its scan limit.'));
  }
  return out;
}

// ---- Audit -----------------------------------------------------------------------------------------

const PIN_KEY = 'portcullis.pinned_key';

function verdict(ok, text) {
  return el('p', { class: ok ? 'verdict ok' : 'verdict bad', 'data-verified': ok ? 'true' : 'false',
    role: 'status' }, ok ? `✔ ${text}` : `✘ ${text}`);
}

// The leaf bytes from /v1/audit/leaves, whichever encoding the endpoint uses.
function leafBytes(entry) {
  if (!entry || typeof entry !== 'object') return null;
  if (typeof entry.leaf_base64 === 'string') return base64ToBytes(entry.leaf_base64);
  if (typeof entry.leaf_hex === 'string') return hexToBytes(entry.leaf_hex, undefined, 'leaf_hex');
  if (typeof entry.leaf === 'string') {
    return /^([0-9a-f]{2})+$/.test(entry.leaf) ? hexToBytes(entry.leaf, undefined, 'leaf')
      : base64ToBytes(entry.leaf);
  }
  return null;
}

async function checkInclusion(head, index) {
  const size = head.treeSize;
  const proof = await api(`/v1/audit/proofs/inclusion?index=${index}&size=${size}`);
  const path = (proof.path ?? proof.audit_path ?? []).map((h, i) => hexToBytes(h, 32, `path[${i}]`));
  if (proof.tree_size !== undefined && BigInt(proof.tree_size) !== size) {
    return { ok: false, problem: `the proof is for size ${proof.tree_size}, not the signed ${size}` };
  }
  // The leaf itself, hashed here; the server's leaf_hash is only compared, never trusted.
  let hash = null;
  let fields = null;
  try {
    const leaves = await api(`/v1/audit/leaves?start=${index}&end=${BigInt(index) + 1n}`);
    const list = Array.isArray(leaves) ? leaves : leaves.leaves ?? [];
    const bytes = leafBytes(list[0]);
    if (bytes) {
      hash = await leafHash(bytes);
      try {
        fields = decodeLeaf(bytes);
      } catch (e) {
        return { ok: false, problem: `leaf ${index} is malformed: ${e.message}` };
      }
    } else if (list[0] && typeof list[0] === 'object') {
      fields = list[0];
    }
  } catch (error) {
    if (!(error instanceof ApiError) || proof.leaf_hash === undefined) throw error;
  }
  if (proof.leaf_hash !== undefined) {
    const claimed = hexToBytes(proof.leaf_hash, 32, 'leaf_hash');
    if (hash && bytesToHex(hash) !== bytesToHex(claimed)) {
      return { ok: false, problem: 'the leaf does not hash to the proof\'s leaf_hash', fields };
    }
    hash = hash ?? claimed;
  }
  if (!hash) return { ok: false, problem: 'no leaf bytes or leaf hash to check' };
  const result = await verifyInclusion(hash, index, size, path, head.rootHash);
  return { ...result, fields, hash };
}

async function renderAudit() {
  const out = el('div', {});
  const headJson = await api('/v1/audit/tree-head');
  const pinned = sessionStorage.getItem(PIN_KEY) || '';
  const result = await verifyTreeHead(headJson, pinned);
  const headBox = el('section', { class: 'card', id: 'tree-head' }, el('h3', {}, 'Latest signed tree head'),
    table([headJson], { columns: ['tree_size', 'timestamp_micros', 'root_hash'] }),
    el('p', { class: 'mono small' }, 'Public key: ', String(headJson.public_key ?? '—')),
    result.ok
      ? verdict(true, 'verified: the Ed25519 signature over this head is valid' +
          (pinned ? ' and the key is the pinned key' : ''))
      : verdict(false, `verification failed: ${result.problem}`));
  const pin = el('input', { id: 'pinned-key', type: 'text', value: pinned, size: 66,
    placeholder: 'the log\'s public key (hex), from signing.pub', spellcheck: 'false' });
  headBox.append(el('form', { class: 'inline', onsubmit: (event) => {
    event.preventDefault();
    if (pin.value.trim()) sessionStorage.setItem(PIN_KEY, pin.value.trim());
    else sessionStorage.removeItem(PIN_KEY);
    route();
  } }, el('label', { for: 'pinned-key' }, 'Pin the key'), pin, el('button', { type: 'submit' }, 'Pin')));
  out.append(headBox);

  const proofBox = el('section', { class: 'card', id: 'inclusion' }, el('h3', {}, 'Inclusion proof'));
  if (!result.ok || result.head.treeSize === 0n) {
    proofBox.append(el('p', {}, result.ok ? 'The log is empty.'
      : 'No inclusion check against a tree head that failed verification.'));
    out.append(proofBox);
    return out;
  }
  const head = result.head;
  const index = el('input', { id: 'leaf-index', type: 'number', min: 0, max: String(head.treeSize - 1n),
    value: String(head.treeSize - 1n) });
  const outcome = el('div', { id: 'inclusion-result', 'aria-live': 'polite' });
  const form = el('form', { class: 'inline' },
    el('label', { for: 'leaf-index' }, `Leaf index (0 … ${head.treeSize - 1n})`), index,
    el('button', { type: 'submit', id: 'check-inclusion' }, 'Check inclusion'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    outcome.replaceChildren(el('p', { class: 'loading' }, 'Checking…'));
    let i;
    try {
      i = BigInt(index.value);
      if (i < 0n || i >= head.treeSize) throw new VerifyError('out of range');
    } catch {
      outcome.replaceChildren(verdict(false, `leaf index must be 0 … ${head.treeSize - 1n}`));
      return;
    }
    try {
      const check = await checkInclusion(head, i);
      const parts = [check.ok
        ? verdict(true, `verified: leaf ${i} is in the signed tree of size ${head.treeSize}`)
        : verdict(false, `verification failed: ${check.problem}`)];
      if (check.hash) parts.push(el('p', { class: 'mono small' }, `leaf hash ${bytesToHex(check.hash)}`));
      if (check.fields) {
        const fields = { ...check.fields };
        if (typeof fields.time_micros === 'bigint') fields.time_micros = Number(fields.time_micros);
        parts.push(table([fields]));
      }
      outcome.replaceChildren(...parts);
    } catch (error) {
      outcome.replaceChildren(errorBox(error, 'Inclusion proof'));
    }
  });
  proofBox.append(el('p', {}, 'The proof is checked here, against the root of the head verified ' +
    'above (RFC 9162 §2.1.3.2); the leaf is fetched and hashed here too.'), form, outcome);
  out.append(proofBox);
  return out;
}

// ---- Exports ---------------------------------------------------------------------------------------

async function renderExports() {
  const json = await api('/v1/exports?state=pending');
  const exports = Array.isArray(json) ? json : json.exports ?? json.items ?? [];
  const message = el('div', { id: 'export-message', 'aria-live': 'polite' });
  if (!exports.length) {
    return el('div', {}, message, el('p', { class: 'empty' }, 'No export is waiting for approval.'));
  }
  const rows = exports.map((e) => ({
    id: e.id,
    requested_by: e.requested_by,
    lane: e.lane ?? e.request?.lane ?? '',
    record_types: e.record_types ?? e.request?.record_types ?? [],
    reason: e.reason ?? e.request?.reason ?? '',
    created_micros: e.created_micros,
  }));
  const approve = (row) => {
    const status = el('span', { class: 'row-status' });
    const button = el('button', { type: 'button', class: 'approve', 'data-export': row.id });
    button.textContent = 'Approve';
    button.addEventListener('click', async () => {
      button.disabled = true;
      status.textContent = '';
      try {
        const result = await api(`/v1/exports/${encodeURIComponent(row.id)}/approve`, { method: 'POST', body: {} });
        status.replaceChildren(el('span', { class: 'ok' }, 'approved'));
        const until = result.window_ends_micros ?? result.export?.window_ends_micros;
        message.replaceChildren(el('p', { class: 'ok', role: 'status' },
          `Export ${row.id} approved` + (until ? `; download window until ${formatMicros(until)}` : '') + '.'));
      } catch (error) {
        button.disabled = error instanceof ApiError && error.status !== 403 && error.status !== 409 ? false : button.disabled;
        status.replaceChildren(el('span', { class: 'bad' }, error.code || 'error'));
        message.replaceChildren(errorBox(error, `Approving ${row.id}`));
      }
    });
    return el('span', {}, button, ' ', status);
  };
  return el('div', {}, message,
    el('p', {}, 'Two-person rule: an export runs only once a supervisor other than the requester approves it.'),
    table(rows, { extra: approve, extraHeader: 'approve' }));
}

window.addEventListener('hashchange', route);
route();
