// The web console in a real browser: Debian's chromium, headless, driven by playwright-core.
// It signs in with API tokens of several roles, visits every page, checks what each shows against
// what the backend holds, verifies the audit tree head in the browser (and sees a tampered one
// fail), walks the two-person export approval (self-approval refused, a replay refused, a second
// supervisor's approval accepted), and screenshots every page into $PORTCULLIS_CONSOLE_SHOTS.
//
// Prerequisites are checked first and fail the test with a message saying what to run (it never
// skips): /usr/bin/chromium (scripts/install.sh), tests/console/node_modules (npm ci).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.PORTCULLIS_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.PORTCULLIS_CONSOLE_SHOTS || path.join(HERE, 'screenshots');
const VIEWPORT = { width: 1280, height: 800 };

function prerequisites() {
  const missing = [];
  if (!existsSync(CHROMIUM)) {
    missing.push(`${CHROMIUM} is missing: run scripts/install.sh (Debian package chromium)`);
  }
  if (!existsSync(path.join(HERE, 'node_modules', 'playwright-core'))) {
    missing.push('tests/console/node_modules is missing: run scripts/install.sh (npm ci in tests/console)');
  }
  return missing;
}

async function startBackend() {
  const { startRealServer } = await import('./real-server.mjs');
  return startRealServer();
}

let chromium;
let browser;
let backend;
const problems = [];  // CSP violations, failed requests, uncaught page errors, foreign requests

before(async () => {
  const missing = prerequisites();
  if (missing.length) throw new Error(`console browser test cannot run:\n  ${missing.join('\n  ')}`);
  ({ chromium } = await import('playwright-core'));
  mkdirSync(SHOTS, { recursive: true });
  backend = await startBackend();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespace for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-gpu', '--font-render-hinting=none'],
  });
});

after(async () => {
  await browser?.close();
  await backend?.stop();
});

async function newPage() {
  const context = await browser.newContext({ viewport: VIEWPORT, ignoreHTTPSErrors: true,
    deviceScaleFactor: 1 });
  const page = await context.newPage();
  const origin = new URL(backend.base).origin;
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('request', (request) => {
    if (new URL(request.url()).origin !== origin) problems.push(`foreign request: ${request.url()}`);
  });
  return page;
}

async function signIn(page, token, purpose = 'console test') {
  await page.goto(`${backend.base}/console/`);
  await page.locator('#token').fill(token);
  await page.locator('#purpose').fill(purpose);
  await page.locator('#signin button[type=submit]').click();
  await page.locator('#nav').waitFor({ state: 'visible' });
}

async function visit(page, name) {
  await page.evaluate((hash) => { location.hash = hash; }, `#/${name}`);
  await page.locator(`#page-${name}[data-ready=true]`).waitFor();
}

// A screenshot that shows a page, not a blank or a half-drawn one: the expected size, enough
// distinct colours, and enough pixels that differ from the background. Decoded in a blank page
// of the same browser (canvas), so the test needs no image library. A pixel-exact comparison
// with a committed reference is deliberately not made: the pages show live times, tree sizes and
// hashes, and font rasterisation differs between machines (docs/console.md).
async function screenshot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  const png = await page.screenshot({ path: file, fullPage: true });
  const probe = await browser.newPage();
  const stats = await probe.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const colours = new Set();
    const background = `${data[data.length - 4]},${data[data.length - 3]},${data[data.length - 2]}`;
    let differing = 0;
    for (let i = 0; i < data.length; i += 4) {
      const key = `${data[i]},${data[i + 1]},${data[i + 2]}`;
      colours.add(key);
      if (key !== background) differing++;
    }
    return { width: bitmap.width, height: bitmap.height, colours: colours.size,
      differing: differing / (data.length / 4) };
  }, png.toString('base64'));
  await probe.close();
  assert.equal(stats.width, VIEWPORT.width, `${name}: screenshot width`);
  assert.ok(stats.height >= VIEWPORT.height, `${name}: screenshot height ${stats.height}`);
  assert.ok(stats.colours >= 16, `${name}: only ${stats.colours} distinct colours (blank page?)`);
  assert.ok(stats.differing >= 0.02, `${name}: only ${(stats.differing * 100).toFixed(1)} % drawn`);
  return stats;
}

describe('console', () => {
  test('static pages carry the CSP and nosniff; unknown files are a JSON 404', async () => {
    const page = await newPage();
    const index = await page.request.get(`${backend.base}/console/`);
    assert.equal(index.status(), 200);
    assert.match(index.headers()['content-type'], /^text\/html/);
    assert.match(index.headers()['content-security-policy'], /default-src 'self'/);
    assert.doesNotMatch(index.headers()['content-security-policy'], /unsafe/);
    assert.equal(index.headers()['x-content-type-options'], 'nosniff');
    const script = await page.request.get(`${backend.base}/console/app.js`);
    assert.match(script.headers()['content-type'], /^text\/javascript/);
    for (const bad of ['nothing.js', '..%2F..%2FCMakeLists.txt', '%2e%2e']) {
      const response = await page.request.get(`${backend.base}/console/${bad}`);
      assert.ok([400, 404].includes(response.status()), `${bad}: ${response.status()}`);
      const body = await response.json();
      assert.match(body.error.code, /^(not_found|invalid_path)$/);
    }
    await page.context().close();
  });

  test('sign-in keeps the token in sessionStorage only; a bad token shows 401', async () => {
    const page = await newPage();
    await page.goto(`${backend.base}/console/`);
    await page.locator('#signin').waitFor();
    await screenshot(page, 'signin');
    await signIn(page, 'pct_not_a_real_token_at_all_aaaaaaaaaaaaaaaaaaaa');
    await visit(page, 'lanes');
    await page.getByText(/401 (unauthenticated|token_)/).first().waitFor();
    const storage = await page.evaluate(() => ({ local: localStorage.length, cookie: document.cookie,
      token: sessionStorage.getItem('portcullis.token') }));
    assert.equal(storage.local, 0);
    assert.equal(storage.cookie, '');
    assert.match(storage.token, /^pct_/);
    await page.locator('#signout').click();
    await page.locator('#signin').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await page.context().close();
  });

  test('lanes: reads per hour per lane and device health', async () => {
    const page = await newPage();
    await signIn(page, backend.tokens.supervisorA);
    await visit(page, 'lanes');
    for (const [lane, total] of Object.entries(backend.expect.laneTotals)) {
      const figure = page.locator(`figure.lane[data-lane="${lane}"]`);
      assert.equal(await figure.locator('.total').getAttribute('data-total'), String(total), `lane ${lane}`);
      const bars = await figure.locator('rect.bar').evaluateAll((rects) =>
        rects.map((r) => Number(r.getAttribute('data-value'))));
      assert.equal(bars.length, 24, `lane ${lane}: one bar per hour`);
      assert.equal(bars.reduce((a, b) => a + b, 0), total, `lane ${lane}: bars add up`);
    }
    const health = page.locator('#page-lanes section.card').nth(1);
    assert.equal(await health.locator('.error').count(), 0, await health.innerText());
    assert.ok(await health.locator('tbody tr').count() >= 1, 'device rows');
    await screenshot(page, 'lanes');
    await page.context().close();
  });

  test('gates: match rate and decision counts', async () => {
    const page = await newPage();
    await signIn(page, backend.tokens.supervisorA);
    await visit(page, 'gates');
    for (const [gate, want] of Object.entries(backend.expect.gates)) {
      const card = page.locator(`section.gate[data-gate="${gate}"]`);
      assert.equal(await card.locator('.rate strong').innerText(), want.rate);
      for (const [decision, count] of Object.entries(want.decisions)) {
        const row = card.locator('tbody tr').filter({
          has: page.locator('td[data-key=decision]', { hasText: new RegExp(`^${decision}$`) }) });
        assert.equal(await row.locator('td[data-key=count]').innerText(), String(count), decision);
      }
    }
    await screenshot(page, 'gates');
    await page.context().close();
  });

  test('retention: the schedule for a supervisor, a readable 403 for a vendor', async () => {
    const page = await newPage();
    await signIn(page, backend.tokens.supervisorA);
    await visit(page, 'retention');
    await page.locator('#page-retention').getByText(backend.expect.retentionText).first().waitFor();
    assert.equal(await page.locator('#page-retention .error').count(), 0);
    await screenshot(page, 'retention');
    await page.context().close();

    const vendor = await newPage();
    await signIn(vendor, backend.tokens.vendor);
    await visit(vendor, 'retention');
    const error = vendor.locator('#page-retention .error');
    assert.match(await error.innerText(), /403 forbidden/);
    assert.match(await error.innerText(), /may not see this/);
    await vendor.context().close();
  });

  test('audit: the signed tree head verifies in the browser, and an inclusion proof too', async () => {
    const page = await newPage();
    await signIn(page, backend.tokens.auditor);
    await visit(page, 'audit');
    const verdict = page.locator('#tree-head .verdict');
    assert.equal(await verdict.getAttribute('data-verified'), 'true', await verdict.innerText());
    assert.match(await verdict.innerText(), /verified/);
    const size = Number(await page.locator('#tree-head td[data-key=tree_size]').innerText().then((t) => t.replace(/,/g, '')));
    assert.ok(size >= 1, 'the log has leaves');

    for (const index of [size - 1, 0, Math.floor(size / 2)]) {
      await page.locator('#leaf-index').fill(String(index));
      await page.locator('#check-inclusion').click();
      const outcome = page.locator('#inclusion-result .verdict');
      await outcome.waitFor();
      assert.equal(await outcome.getAttribute('data-verified'), 'true', await outcome.innerText());
      assert.match(await outcome.innerText(), new RegExp(`leaf ${index} is in the signed tree`));
    }
    await screenshot(page, 'audit');

    // Pinning: the log's own signing.pub verifies; any other key fails although the signature is
    // valid (whoever serves the head also serves the key).
    await page.locator('#pinned-key').fill(backend.expect.publicKey);
    await page.locator('#pinned-key').press('Enter');
    await page.locator('#tree-head .verdict', { hasText: 'and the key is the pinned key' }).waitFor();
    await page.locator('#pinned-key').fill('ab'.repeat(32));
    await page.locator('#pinned-key').press('Enter');
    const pinned = page.locator('#tree-head .verdict', { hasText: 'verification failed' });
    await pinned.waitFor();
    assert.match(await pinned.innerText(), /the public key is not the pinned key/);
    await page.context().close();
  });

  test('audit: a tampered tree head or proof shows "verification failed"', async () => {
    const page = await newPage();
    await signIn(page, backend.tokens.auditor);
    const flip = (h) => h.slice(0, -1) + (h.at(-1) === '0' ? '1' : '0');
    let tamper = (head) => ({ ...head, root_hash: flip(head.root_hash) });
    await page.route('**/v1/audit/tree-head', async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, json: tamper(await response.json()) });
    });
    for (const change of [
      (head) => ({ ...head, root_hash: flip(head.root_hash) }),
      (head) => ({ ...head, tree_size: head.tree_size + 1 }),
      (head) => ({ ...head, signature: flip(head.signature) }),
    ]) {
      tamper = change;
      await visit(page, 'audit');
      const verdict = page.locator('#tree-head .verdict');
      assert.equal(await verdict.getAttribute('data-verified'), 'false');
      assert.match(await verdict.innerText(), /verification failed: the Ed25519 signature does not match/);
      await page.evaluate(() => { location.hash = '#/lanes'; });
    }
    await visit(page, 'audit');
    await screenshot(page, 'audit-tampered');

    // An honest head, but a proof with one hash changed.
    tamper = (head) => head;
    await page.route('**/v1/audit/proofs/inclusion*', async (route) => {
      const response = await route.fetch();
      const proof = await response.json();
      proof.path[0] = flip(proof.path[0]);
      await route.fulfill({ response, json: proof });
    });
    await page.evaluate(() => { location.hash = '#/lanes'; });
    await visit(page, 'audit');
    assert.equal(await page.locator('#tree-head .verdict').getAttribute('data-verified'), 'true');
    await page.locator('#leaf-index').fill('0');
    await page.locator('#check-inclusion').click();
    const outcome = page.locator('#inclusion-result .verdict');
    await outcome.waitFor();
    assert.equal(await outcome.getAttribute('data-verified'), 'false');
    assert.match(await outcome.innerText(), /verification failed: the proof does not lead to the signed root/);
    await page.context().close();
  });

  test('exports: self-approval refused (403), a replay refused (409), another supervisor approves', async () => {
    const { ownExport, othersExport } = backend.expect;
    const page = await newPage();
    await signIn(page, backend.tokens.supervisorA);
    await visit(page, 'exports');
    await page.locator(`button.approve[data-export="${ownExport}"]`).waitFor();
    await screenshot(page, 'exports');

    await page.locator(`button.approve[data-export="${ownExport}"]`).click();
    const message = page.locator('#export-message .error');
    await message.waitFor();
    assert.match(await message.innerText(), /403 self_approval/);
    assert.match(await message.innerText(), /a different supervisor must approve it/);
    await screenshot(page, 'exports-self-approval');

    // Someone approves the other export behind the page's back: the page's click is a replay.
    assert.equal(await backend.approveDirectly(othersExport, backend.tokens.supervisorA), 200);
    await page.locator(`button.approve[data-export="${othersExport}"]`).click();
    await page.locator('#export-message .error', { hasText: '409 conflict' }).waitFor();
    await page.context().close();

    const second = await newPage();
    await signIn(second, backend.tokens.supervisorB);
    await visit(second, 'exports');
    await second.locator(`button.approve[data-export="${ownExport}"]`).click();
    const done = second.locator('#export-message .ok');
    await done.waitFor();
    assert.match(await done.innerText(), new RegExp(`Export ${ownExport} approved`));
    await visit(second, 'lanes');
    await visit(second, 'exports');
    assert.equal(await second.locator(`button.approve[data-export="${ownExport}"]`).count(), 0);
    await second.context().close();
  });

  test('no CSP violation, page error or request to another origin happened', () => {
    assert.deepEqual(problems, []);
  });
});
