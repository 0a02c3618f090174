// A stand-in for `portcullis serve`, used only while the real server is not available to this
// test (PORTCULLIS_CONSOLE_BACKEND=fixture, or no serve command in the binary): it serves the
// console's source files with the same headers as routes_console.cc and answers the API routes
// the console calls with responses shaped per docs/api.md, including the role rules of the
// default policy, the two-person export rule and a real signed, growing audit log.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as ref from './reference.mjs';

const CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/server/console');
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
  "form-action 'none'; frame-ancestors 'none'";
const TYPES = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8' };

const PRINCIPALS = {
  pct_fixture_supervisor_a: { name: 'supervisor:ann', role: 'supervisor' },
  pct_fixture_supervisor_b: { name: 'supervisor:bob', role: 'supervisor' },
  pct_fixture_auditor: { name: 'auditor:eve', role: 'auditor' },
  pct_fixture_vendor: { name: 'vendor:acme', role: 'vendor' },
};

const HOUR = 3600n * 1000000n;

export async function startFixture() {
  const signer = ref.newSigner();
  const leaves = [];  // leaf bytes
  const now = BigInt(Date.now()) * 1000n;
  const hourStart = (now / HOUR) * HOUR;
  const perHour = { 7: [0, 0, 1, 3, 0, 2], 9: [4, 0, 0, 0, 0, 1] };  // the last six hours
  const exports = new Map([
    ['a'.repeat(32), { id: 'a'.repeat(32), requested_by: 'supervisor:ann', state: 'pending',
      lane: '7', record_types: ['plate_read'], reason: 'court order 2026/118',
      created_micros: Number(now - HOUR) }],
    ['b'.repeat(32), { id: 'b'.repeat(32), requested_by: 'supervisor:bob', state: 'pending',
      lane: '9', record_types: ['plate_read'], reason: 'insurance claim 7731',
      created_micros: Number(now - 2n * HOUR) }],
  ]);

  const send = (res, status, body, headers = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(text);
  };
  const error = (res, status, code, message) => send(res, status, { error: { code, message,
    request_id: '0123456789abcdef' } });

  const head = () => ref.signedHead(signer, leaves.map(ref.leafHash), Number(BigInt(Date.now()) * 1000n));

  const routes = [
    // Shapes as routes_lane.cc / routes_gate.cc answer them.
    ['GET', /^\/v1\/stats\/lanes$/, ['officer', 'supervisor', 'vendor', 'auditor'], () => {
      const from = hourStart - 23n * HOUR;
      return {
        hours: 24, from_micros: Number(from), until_micros: Number(now),
        hour_starts_micros: Array.from({ length: 24 }, (_, i) => Number(from + BigInt(i) * HOUR)),
        lanes: Object.entries(perHour).map(([lane, recent]) => ({
          lane, total: recent.reduce((a, b) => a + b, 0),
          reads_per_hour: Array.from({ length: 24 }, (_, i) => (i >= 18 ? recent[i - 18] : 0)),
        })),
        complete: true,
      };
    }],
    ['GET', /^\/v1\/devices\/health$/, ['vendor', 'supervisor', 'admin'], () => ({
      node: 'fixture', since_micros: Number(now - 10n * HOUR), now_micros: Number(now),
      lanes: [
        { lane: '7', last_frame_micros: Number(now - 60000000n), last_read_micros: Number(now - 60000000n),
          last_read_at: '2026-11-27T08:00:00Z', reads_last_hour: 2, frames_total: 9, errors: {} },
        { lane: '9', last_frame_micros: Number(now - HOUR), last_read_micros: Number(now - HOUR),
          last_read_at: '2026-11-27T07:00:00Z', reads_last_hour: 0, frames_total: 7, errors: { bad_image: 2 } },
      ],
    })],
    ['GET', /^\/v1\/stats\/gates$/, ['officer', 'supervisor', 'vendor', 'auditor'], () => ({
      hours: 24, from_micros: Number(now - 24n * HOUR), until_micros: Number(now),
      gates: [{ gate: 'A1', decisions: { match: 45, no_match: 5 }, total: 50, one_to_one: 3, match_rate: 0.9 }],
      total: { decisions: { match: 45, no_match: 5 }, total: 50, match_rate: 0.9 },
    })],
    ['GET', /^\/v1\/retention$/, ['supervisor', 'auditor', 'admin'], () => ({
      now_micros: Number(now),
      classes: [{ name: 'plates', retention_seconds: 2592000, bucket_seconds: 86400,
        covers: [{ record_type: 'plate_read', subject: 'vehicle' }] }],
      schedule: [{ kek: 'kek-plates-20261127', class: 'plates', records: 11,
        shred_at_micros: Number(now + 24n * HOUR), shred_at: '2026-11-28T08:00:00Z', due: false }],
      complete: true,
    })],
    ['GET', /^\/v1\/audit\/tree-head$/, ['auditor', 'admin'], () => head()],
    ['GET', /^\/v1\/audit\/proofs\/inclusion$/, ['auditor'], (req, url) => {
      const index = Number(url.searchParams.get('index'));
      const size = Number(url.searchParams.get('size'));
      if (!(size >= 1 && size <= leaves.length && index >= 0 && index < size)) {
        return [400, { error: { code: 'invalid_argument', message: 'bad index or size' } }];
      }
      const hashes = leaves.slice(0, size).map(ref.leafHash);
      return { leaf_index: index, tree_size: size, leaf_hash: hashes[index].toString('hex'),
        path: ref.path(index, hashes).map((h) => h.toString('hex')) };
    }],
    ['GET', /^\/v1\/audit\/leaves$/, ['auditor'], (req, url) => {
      const start = Number(url.searchParams.get('start'));
      const end = Number(url.searchParams.get('end'));
      return { leaves: leaves.slice(start, end).map((leaf, i) => ({ index: start + i,
        leaf_base64: leaf.toString('base64') })) };
    }],
    ['GET', /^\/v1\/exports$/, ['supervisor', 'auditor'], () => ({
      exports: [...exports.values()].filter((e) => e.state === 'pending'),
    })],
    ['POST', /^\/v1\/exports\/([0-9a-f]{32})\/approve$/, ['supervisor'], (req, url, who, match) => {
      const entry = exports.get(match[1]);
      if (!entry) return [404, { error: { code: 'not_found', message: 'no such export' } }];
      if (entry.requested_by === who.name) {
        return [403, { error: { code: 'self_approval', message: 'the requester cannot approve' } }];
      }
      if (entry.state !== 'pending') {
        return [409, { error: { code: 'conflict', message: 'the export is not pending' } }];
      }
      Object.assign(entry, { state: 'approved', approved_by: who.name,
        window_ends_micros: Number(BigInt(Date.now()) * 1000n + HOUR) });
      return entry;
    }],
  ];

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://fixture');
    if (req.method === 'GET' && url.pathname.startsWith('/console/')) {
      const name = url.pathname === '/console/' ? 'index.html' : url.pathname.slice('/console/'.length);
      const headers = { 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff',
        'X-Frame-Options': 'DENY', 'Cache-Control': 'no-store' };
      if (!/^[a-z]+\.(html|js|css)$/.test(name)) {
        send(res, 404, { error: { code: 'not_found', message: 'no such console file' } }, headers);
        return;
      }
      try {
        const body = await readFile(path.join(CONSOLE_DIR, name));
        res.writeHead(200, { ...headers, 'Content-Type': TYPES[name.split('.').pop()] });
        res.end(body);
      } catch {
        send(res, 404, { error: { code: 'not_found', message: 'no such console file' } }, headers);
      }
      return;
    }
    const token = (req.headers.authorization || '').replace(/^Bearer /, '');
    const who = PRINCIPALS[token];
    const purpose = req.headers['x-purpose'] || '';
    const found = routes.find(([m, re]) => re.test(url.pathname) && m === req.method);
    const record = (result) => leaves.push(ref.encodeLeaf({
      time_micros: BigInt(Date.now()) * 1000n, principal: who ? who.name : 'anonymous',
      role: who ? who.role : 'none', purpose, action: `http.${url.pathname}`, result, record_ref: null }));
    if (!found) return error(res, 404, 'not_found', 'no such route');
    if (!who) {
      record('denied:unauthenticated');
      return error(res, 401, 'unauthenticated', 'a valid bearer token is required');
    }
    if (!found[2].includes(who.role)) {
      record('denied:forbidden');
      return error(res, 403, 'forbidden', `a ${who.role} may not do this`);
    }
    const reply = found[3](req, url, who, url.pathname.match(found[1]));
    const [status, body] = Array.isArray(reply) ? reply : [200, reply];
    record(status === 200 ? 'ok' : `denied:${body.error.code}`);
    send(res, status, body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    kind: 'fixture',
    base,
    tokens: {
      supervisorA: 'pct_fixture_supervisor_a',
      supervisorB: 'pct_fixture_supervisor_b',
      auditor: 'pct_fixture_auditor',
      vendor: 'pct_fixture_vendor',
    },
    // What the pages must show.
    expect: {
      laneTotals: { 7: 6, 9: 5 },
      gates: { A1: { rate: '90.0 %', decisions: { match: 45, no_match: 5 } } },
      ownExport: 'a'.repeat(32),      // requested by supervisorA
      othersExport: 'b'.repeat(32),   // requested by supervisorB
      retentionText: 'plate_read/vehicle',
    },
    // Approves an export out of band (to make the page's next click a replay).
    approveDirectly: async (id, token) => (await fetch(`${base}/v1/exports/${id}/approve`, {
      method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: '{}' })).status,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}
