// Starts the real `portcullis serve` for the browser test: a fresh directory with a self-signed
// certificate, audit keys, a vault, an access store with principals and tokens made by the access
// CLI; then, through the API itself, the data the pages show (plate reads posted by lane
// devices, a gate's gallery and matches, two export requests). What the pages must show is
// taken from the API's own answers to that seeding, not hard-coded.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';

const CLI = process.env.PORTCULLIS_CLI_PATH || '';
const SOURCE = process.env.PORTCULLIS_SOURCE_DIR || path.resolve(import.meta.dirname, '../..');
const JOHNS = '/usr/share/doc/libdlib19.1/examples/johns';  // face chips Debian's dlib ships

export function serveAvailable() {
  if (!CLI) return false;
  const probe = spawnSync(CLI, ['serve', '--help'], { encoding: 'utf8' });
  return probe.status === 0;
}

function run(command, args, what) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.status !== 0) {
    throw new Error(`${what} failed (${command} ${args.join(' ')}): exit ${result.status}\n` +
      `${result.stderr}${result.stdout}`);
  }
  return result.stdout;
}

// The last JSON line a --json command printed.
function lastJson(stdout, what) {
  const lines = stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  if (!lines.length) throw new Error(`${what}: no JSON output:\n${stdout}`);
  return JSON.parse(lines.at(-1));
}

function selfSignedCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=portcullis-console-test',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], 'openssl req');
  return { cert, key };
}

function startServe(configPath, timeoutMs = 120000) {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, ['serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let buffer = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portcullis serve did not report "listening" within ${timeoutMs} ms:\n${log}`));
    }, timeoutMs);
    const onData = (chunk) => {
      log += chunk;
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          const entry = JSON.parse(line);
          if (entry.msg === 'listening' && entry.port) {
            clearTimeout(timer);
            resolve({ child, port: entry.port, log: () => log });
          }
        } catch {
          // not a JSON log line
        }
      }
    };
    child.stderr.setEncoding('utf8');
    child.stdout.setEncoding('utf8');
    child.stderr.on('data', onData);
    child.stdout.on('data', onData);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`portcullis serve exited (${code ?? signal}) before listening:\n${log}`));
    });
  });
}

export async function startRealServer() {
  if (!CLI) throw new Error('PORTCULLIS_CLI_PATH is not set (ctest sets it to the built binary)');
  if (!serveAvailable()) {
    throw new Error(`${CLI} has no working 'serve' command: build the portcullis target`);
  }
  // What the seeding needs besides the binary: fail saying so, not halfway through.
  for (const [need, hint] of [[path.join(SOURCE, 'models', 'MANIFEST.json'), 'run scripts/install.sh'],
    [JOHNS, 'Debian package libdlib19.1 (a dependency of libdlib-dev) ships these face chips']]) {
    if (!existsSync(need)) throw new Error(`${need} is missing: ${hint}`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'portcullis-console-'));
  const { cert, key } = selfSignedCert(dir);
  const ca = readFileSync(cert);
  const secretFile = path.join(dir, 'vault.secret');
  writeFileSync(secretFile, 'console-test-passphrase\n', { mode: 0o600 });
  run(CLI, ['audit', 'keygen', '--out', path.join(dir, 'audit-keys')], 'audit keygen');

  const config = {
    node: 'console-test',
    listen: '127.0.0.1:0',
    tls: { cert, key },
    vault: { store: `sqlite:${path.join(dir, 'vault.db')}`, keys: `keyring:${path.join(dir, 'vault.keyring')}`,
      secret_file: secretFile, create_keys: true },
    audit: { log: path.join(dir, 'audit'), keys: path.join(dir, 'audit-keys') },
    access: { store: `sqlite:${path.join(dir, 'access.db')}`, policy: path.join(SOURCE, 'data', 'policy.json') },
    // One recognition worker is plenty for a few frames; no rate limit (the test is not about it).
    limits: { workers: 1, queue: 8, rate_per_minute: 0 },
    models: { dir: path.join(SOURCE, 'models') },
  };
  const configPath = path.join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));

  // Principals and their tokens, made with the access CLI (docs/policy.md) before the server
  // starts, as an operator would.
  const store = config.access.store;
  const accessCli = (args, what) => lastJson(run(CLI, ['access', ...args, '--store', store, '--json'],
    what), what).token;
  const admin = accessCli(['init', '--admin', 'admin:root'], 'access init');
  const principal = (name, role, scope) => accessCli(['principal', 'add', '--name', name,
    '--role', role, ...scope.flatMap((s) => ['--scope', s])], `access principal add ${name}`);
  const tokens = {
    admin,
    supervisorA: principal('supervisor:ann', 'supervisor', ['*']),
    supervisorB: principal('supervisor:bob', 'supervisor', ['*']),
    auditor: principal('auditor:eve', 'auditor', ['*']),
    vendor: principal('vendor:acme', 'vendor', ['7']),
  };
  const laneToken = { 7: principal('lane:7', 'lane_device', ['7']),
    9: principal('lane:9', 'lane_device', ['9']) };
  const gateToken = principal('gate:a1', 'gate_device', ['A1']);

  const serve = await startServe(configPath);
  const base = `https://127.0.0.1:${serve.port}`;

  // One HTTPS request, the certificate checked against our own CA.
  const call = (method, urlPath, { token, json, body, contentType, purpose } = {}) =>
    new Promise((resolve, reject) => {
      const payload = json !== undefined ? Buffer.from(JSON.stringify(json)) : body;
      const headers = {};
      if (token) headers.Authorization = `Bearer ${token}`;
      if (purpose) headers['X-Purpose'] = purpose;
      if (payload) {
        headers['Content-Type'] = json !== undefined ? 'application/json' : contentType;
        headers['Content-Length'] = payload.length;
      }
      const req = httpsRequest(`${base}${urlPath}`, { method, headers, ca }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = null;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode, body: parsed });
        });
      });
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  const must = async (status, promise, what) => {
    const response = await promise;
    if (response.status !== status) {
      throw new Error(`${what}: expected ${status}, got ${response.status} ${JSON.stringify(response.body)}`);
    }
    return response.body;
  };

  // Plate reads: the CLI's own synthetic scenes, posted by each lane's device.
  const scenes = path.join(dir, 'scenes');
  run(CLI, ['plate', 'demo', '--out', scenes], 'plate demo');
  const files = readdirSync(scenes).filter((f) => f.endsWith('.png')).sort();
  const laneTotals = { 7: 0, 9: 0 };
  for (const [i, file] of files.entries()) {
    const lane = i % 2 === 0 ? '7' : '9';
    const reply = await must(200, call('POST', `/v1/lanes/${lane}/reads`, { token: laneToken[lane],
      body: readFileSync(path.join(scenes, file)), contentType: 'image/png' }), `read ${file}`);
    laneTotals[lane] += Number(reply.stored ?? reply.reads?.length ?? 0);
  }

  // A gate: a two-traveller gallery, one capture of a passenger in it and one of a stranger.
  const chip = (person, n) => {
    const folder = path.join(JOHNS, person);
    return readFileSync(path.join(folder, readdirSync(folder).sort()[n]));
  };
  const gallery = await must(201, call('POST', '/v1/gates/A1/galleries', { token: gateToken, json: {
    flight: 'BA117',
    travellers: [
      { id: 'P-SALLEY', subject: 'citizen', photo_jpeg_base64: chip('John_Salley', 0).toString('base64') },
      { id: 'P-SAVAGE', subject: 'non_citizen', photo_jpeg_base64: chip('John_Savage', 0).toString('base64') },
    ] } }), 'open gallery');
  const decisions = {};
  for (const [person, n] of [['John_Salley', 1], ['John_Savage', 2], ['John_Simm', 0]]) {
    const reply = await must(200, call('POST', `/v1/gates/A1/galleries/${gallery.gallery}/match`,
      { token: gateToken, body: chip(person, n), contentType: 'image/jpeg' }), `match ${person}`);
    decisions[reply.decision] = (decisions[reply.decision] ?? 0) + 1;
  }
  const total = Object.values(decisions).reduce((a, b) => a + b, 0);
  const rate = `${(((decisions.match ?? 0) / total) * 100).toFixed(1)} %`;

  // Two export requests, one by each supervisor.
  const now = Date.now() * 1000;
  const exportBy = async (token, reason) => (await must(201, call('POST', '/v1/exports', { token,
    purpose: 'console test', json: { lane: '7', record_types: ['plate_read'], from_micros: 0,
      until_micros: now + 3600e6, reason } }), `export ${reason}`)).id;
  const ownExport = await exportBy(tokens.supervisorA, 'court order 2026/118');
  const othersExport = await exportBy(tokens.supervisorB, 'insurance claim 7731');

  return {
    kind: 'real',
    base,
    tokens,
    expect: {
      laneTotals,
      gates: { A1: { rate, decisions } },
      ownExport,
      othersExport,
      retentionText: 'plate_read',
      publicKey: readFileSync(path.join(dir, 'audit-keys', 'signing.pub'), 'utf8').trim(),
    },
    approveDirectly: async (id, token) => (await call('POST', `/v1/exports/${id}/approve`,
      { token, json: {} })).status,
    log: serve.log,
    stop: async () => {
      serve.child.removeAllListeners('exit');
      const exited = new Promise((resolve) => serve.child.once('exit', resolve));
      serve.child.kill('SIGTERM');
      const timer = setTimeout(() => serve.child.kill('SIGKILL'), 15000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
