// Checking the audit log in the browser, trusting only the log's public key: the Ed25519
// signature over a tree head (the exact bytes src/audit/format.cc signs) and RFC 9162 inclusion
// proofs against the signed root. Pure functions over WebCrypto, so node runs the same module in
// tests/console/verify.test.mjs.

const encoder = new TextEncoder();

export class VerifyError extends Error {}

export function hexToBytes(hex, expectedLength, what) {
  if (typeof hex !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(hex)) {
    throw new VerifyError(`${what} is not hex`);
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.substr(2 * i, 2), 16);
  if (expectedLength !== undefined && bytes.length !== expectedLength) {
    throw new VerifyError(`${what} has ${bytes.length} bytes, expected ${expectedLength}`);
  }
  return bytes;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function base64ToBytes(text) {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// A JSON integer (number or decimal string) as a BigInt in [min, max]; refuses anything else so a
// tampered "tree_size": 1.5 or "1e3" cannot be silently rounded into a valid-looking head.
export function toBigInt(value, what, min, max) {
  let n;
  if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && /^-?[0-9]{1,20}$/.test(value)) n = BigInt(value);
  else throw new VerifyError(`${what} is not an integer`);
  if (n < min || n > max) throw new VerifyError(`${what} is out of range`);
  return n;
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

function u64be(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, n));
  return out;
}

// TreeHeadSignedBytes (include/portcullis/audit.h, docs/audit.md):
//   "portcullis-audit-sth-v1" 0x00 || u64 tree_size || i64 timestamp_micros || 32-byte root,
// integers big-endian, the timestamp as its two's-complement bits.
export function treeHeadSignedBytes(treeSize, timestampMicros, rootHash) {
  return concat(
    encoder.encode('portcullis-audit-sth-v1'),
    new Uint8Array([0]),
    u64be(treeSize),
    u64be(timestampMicros),
    rootHash,
  );
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

export async function leafHash(leaf) {
  return sha256(concat(new Uint8Array([0]), leaf));
}

export async function interiorHash(left, right) {
  return sha256(concat(new Uint8Array([1]), left, right));
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

// Parses the API's tree head ({tree_size, timestamp_micros, root_hash, signature, public_key})
// strictly; throws VerifyError saying which field is wrong.
export function parseTreeHead(head) {
  if (!head || typeof head !== 'object') throw new VerifyError('the tree head is not an object');
  return {
    treeSize: toBigInt(head.tree_size, 'tree_size', 0n, U64_MAX),
    timestampMicros: toBigInt(head.timestamp_micros, 'timestamp_micros', I64_MIN, I64_MAX),
    rootHash: hexToBytes(head.root_hash, 32, 'root_hash'),
    signature: hexToBytes(head.signature, 64, 'signature'),
    publicKey: hexToBytes(head.public_key, 32, 'public_key'),
  };
}

// Resolves to {ok: true, head} or {ok: false, problem: "..."}; never throws for a bad head.
// pinnedKeyHex (optional): the key the auditor expects; a head signed by another key fails even
// if its signature is valid, since whoever serves the head also serves the key.
export async function verifyTreeHead(head, pinnedKeyHex = '') {
  let parsed;
  try {
    parsed = parseTreeHead(head);
  } catch (e) {
    return { ok: false, problem: `malformed tree head: ${e.message}` };
  }
  if (pinnedKeyHex && bytesToHex(parsed.publicKey) !== pinnedKeyHex.trim().toLowerCase()) {
    return { ok: false, problem: 'the public key is not the pinned key', head: parsed };
  }
  let key;
  try {
    key = await crypto.subtle.importKey('raw', parsed.publicKey, { name: 'Ed25519' }, false, [
      'verify',
    ]);
  } catch (e) {
    return { ok: false, problem: `this browser cannot use Ed25519 keys (${e.message})` };
  }
  const message = treeHeadSignedBytes(parsed.treeSize, parsed.timestampMicros, parsed.rootHash);
  let valid = false;
  try {
    valid = await crypto.subtle.verify({ name: 'Ed25519' }, key, parsed.signature, message);
  } catch (e) {
    return { ok: false, problem: `signature check failed to run (${e.message})`, head: parsed };
  }
  if (!valid) {
    return { ok: false, problem: 'the Ed25519 signature does not match the tree head', head: parsed };
  }
  return { ok: true, head: parsed };
}

// RFC 9162 §2.1.3.2: does `path` lead from leafHashBytes at leafIndex to root in a tree of
// treeSize leaves? Returns {ok, problem, computedRoot}.
export async function verifyInclusion(leafHashBytes, leafIndex, treeSize, path, root) {
  const index = BigInt(leafIndex);
  const size = BigInt(treeSize);
  if (index >= size) return { ok: false, problem: 'the leaf index is not below the tree size' };
  let fn = index;
  let sn = size - 1n;
  let r = leafHashBytes;
  for (const p of path) {
    if (sn === 0n) return { ok: false, problem: 'the proof is longer than the tree allows' };
    if ((fn & 1n) === 1n || fn === sn) {
      r = await interiorHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await interiorHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) return { ok: false, problem: 'the proof is shorter than the tree needs', computedRoot: r };
  if (!equalBytes(r, root)) {
    return { ok: false, problem: 'the proof does not lead to the signed root', computedRoot: r };
  }
  return { ok: true, computedRoot: r };
}

// A leaf in the canonical v1 encoding (docs/audit.md) -> its fields, or throws VerifyError.
export function decodeLeaf(leaf) {
  if (leaf.length < 9 || leaf[0] !== 1) throw new VerifyError('leaf of unknown version');
  const view = new DataView(leaf.buffer, leaf.byteOffset, leaf.byteLength);
  const out = { time_micros: view.getBigInt64(1) };
  let at = 9;
  const decoder = new TextDecoder('utf-8', { fatal: false });
  for (const name of ['principal', 'role', 'purpose', 'action', 'result']) {
    if (at + 2 > leaf.length) throw new VerifyError('leaf field runs past the end');
    const n = view.getUint16(at);
    at += 2;
    if (at + n > leaf.length) throw new VerifyError('leaf field runs past the end');
    out[name] = decoder.decode(leaf.subarray(at, at + n));
    at += n;
  }
  if (at >= leaf.length) throw new VerifyError('leaf lacks its record marker');
  const marker = leaf[at++];
  if (marker === 0) {
    out.record_ref = null;
  } else if (marker === 1 && at + 32 <= leaf.length) {
    out.record_ref = bytesToHex(leaf.subarray(at, at + 32));
    at += 32;
  } else {
    throw new VerifyError('leaf has a bad record reference');
  }
  if (at !== leaf.length) throw new VerifyError('leaf has trailing bytes');
  return out;
}
