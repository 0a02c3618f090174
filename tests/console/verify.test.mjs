// The console's verification module (src/server/console/verify.js), run in node against the
// independent reference in reference.mjs: exact signed bytes, signatures that must fail when any
// field changes, RFC 9162 inclusion for every leaf of trees of 1..33 leaves, and every way a proof
// can be wrong. The browser test then checks the same module against the real server's heads.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as ref from './reference.mjs';
import * as verify from '../../src/server/console/verify.js';

const hex = (bytes) => Buffer.from(bytes).toString('hex');

test('treeHeadSignedBytes is the documented layout, byte for byte', () => {
  const root = Buffer.alloc(32, 0xab);
  const got = verify.treeHeadSignedBytes(42n, 1795751461682561n, new Uint8Array(root));
  const want =
    Buffer.from('portcullis-audit-sth-v1', 'latin1').toString('hex') + '00' +
    '000000000000002a' + '00066139f7fa7d81' + 'ab'.repeat(32);
  assert.equal(hex(got), want);
  assert.equal(hex(got), ref.treeHeadSignedBytes(42, 1795751461682561n, root).toString('hex'));
  // A negative timestamp is its two's-complement bits, as the C++ static_cast<uint64_t> does.
  assert.equal(hex(verify.treeHeadSignedBytes(1n, -1n, new Uint8Array(32))).slice(48, 80),
    '0000000000000001ffffffffffffffff');
});

test('a head signed by the reference verifies; any changed field fails', async () => {
  const signer = ref.newSigner();
  const leaves = [0, 1, 2, 3, 4].map((i) => ref.leafHash(Buffer.from(`leaf ${i}`)));
  const head = ref.signedHead(signer, leaves, 1795751461682561);
  const ok = await verify.verifyTreeHead(head);
  assert.equal(ok.ok, true, ok.problem);
  assert.equal(ok.head.treeSize, 5n);

  const flip = (h) => h.slice(0, -1) + (h.at(-1) === '0' ? '1' : '0');
  const tampered = [
    { ...head, tree_size: 6 },
    { ...head, timestamp_micros: head.timestamp_micros + 1 },
    { ...head, root_hash: flip(head.root_hash) },
    { ...head, signature: flip(head.signature) },
    { ...head, public_key: ref.newSigner().publicKeyHex },
  ];
  for (const bad of tampered) {
    const result = await verify.verifyTreeHead(bad);
    assert.equal(result.ok, false, JSON.stringify(bad));
    assert.match(result.problem, /signature does not match/);
  }
  const pinnedOther = await verify.verifyTreeHead(head, ref.newSigner().publicKeyHex);
  assert.equal(pinnedOther.ok, false);
  assert.match(pinnedOther.problem, /not the pinned key/);
  assert.equal((await verify.verifyTreeHead(head, signer.publicKeyHex.toUpperCase())).ok, true);
});

test('malformed heads are refused with the field named, never thrown', async () => {
  const signer = ref.newSigner();
  const head = ref.signedHead(signer, [ref.leafHash(Buffer.from('x'))], 7);
  const cases = [
    [null, /not an object/],
    [{ ...head, tree_size: 1.5 }, /tree_size is not an integer/],
    [{ ...head, tree_size: '1e3' }, /tree_size is not an integer/],
    [{ ...head, tree_size: -1 }, /tree_size is out of range/],
    [{ ...head, timestamp_micros: undefined }, /timestamp_micros is not an integer/],
    [{ ...head, root_hash: 'zz' }, /root_hash is not hex/],
    [{ ...head, root_hash: head.root_hash.slice(2) }, /root_hash has 31 bytes/],
    [{ ...head, signature: '' }, /signature has 0 bytes/],
    [{ ...head, public_key: 42 }, /public_key is not hex/],
  ];
  for (const [bad, problem] of cases) {
    const result = await verify.verifyTreeHead(bad);
    assert.equal(result.ok, false);
    assert.match(result.problem, problem);
  }
});

test('inclusion proofs of the reference verify for every leaf of trees of 1..33 leaves', async () => {
  for (let n = 1; n <= 33; n++) {
    const leaves = Array.from({ length: n }, (_, i) => ref.leafHash(Buffer.from(`e${i}`)));
    const root = ref.mth(leaves);
    for (let m = 0; m < n; m++) {
      const result = await verify.verifyInclusion(leaves[m], m, n, ref.path(m, leaves), root);
      assert.equal(result.ok, true, `n=${n} m=${m}: ${result.problem}`);
    }
  }
});

test('wrong inclusion proofs fail, each with its reason', async () => {
  const leaves = Array.from({ length: 11 }, (_, i) => ref.leafHash(Buffer.from(`e${i}`)));
  const root = ref.mth(leaves);
  const good = ref.path(6, leaves);
  const check = (leaf, index, size, p, r = root) => verify.verifyInclusion(leaf, index, size, p, r);

  assert.match((await check(leaves[5], 6, 11, good)).problem, /does not lead to the signed root/);
  assert.match((await check(leaves[6], 7, 11, good)).problem, /does not lead to the signed root/);
  assert.match((await check(leaves[6], 6, 11, good, ref.mth(leaves.slice(0, 10)))).problem,
    /does not lead/);
  const damaged = good.map((h, i) => (i === 1 ? Buffer.alloc(32) : h));
  assert.match((await check(leaves[6], 6, 11, damaged)).problem, /does not lead/);
  assert.match((await check(leaves[6], 6, 11, good.slice(0, -1))).problem, /shorter/);
  assert.match((await check(leaves[6], 6, 11, [...good, Buffer.alloc(32)])).problem, /longer/);
  assert.match((await check(leaves[6], 11, 11, good)).problem, /not below the tree size/);
});

test('decodeLeaf reads the v1 encoding and refuses damaged leaves', () => {
  const event = { time_micros: 1795751461682561n, principal: 'auditor:ann', role: 'auditor',
    purpose: 'quarterly review — ü', action: 'http.audit.read', result: 'ok',
    record_ref: 'cd'.repeat(32) };
  const leaf = ref.encodeLeaf(event);
  const fields = verify.decodeLeaf(new Uint8Array(leaf));
  assert.deepEqual(fields, event);
  assert.equal(verify.decodeLeaf(new Uint8Array(ref.encodeLeaf({ ...event, record_ref: null }))).record_ref, null);
  const bad = [
    leaf.subarray(0, 8),
    Buffer.concat([Buffer.from([2]), leaf.subarray(1)]),
    leaf.subarray(0, leaf.length - 1),
    Buffer.concat([leaf, Buffer.from([0])]),
  ];
  for (const b of bad) assert.throws(() => verify.decodeLeaf(new Uint8Array(b)), verify.VerifyError);
});
