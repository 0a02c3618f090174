// An independent reference for what the console checks, written the straightforward way with
// node:crypto and Buffer (not sharing a line with src/server/console/verify.js): RFC 9162 §2.1
// tree hashes and inclusion paths, the v1 leaf encoding and TreeHeadSignedBytes of docs/audit.md,
// Ed25519 signing. verify.test.mjs checks the console's module against it.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';

export function sha256(...parts) {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export const leafHash = (leaf) => sha256(Buffer.from([0]), leaf);
const node = (l, r) => sha256(Buffer.from([1]), l, r);

function largestPowerOfTwoBelow(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// MTH(D[n]) over leaf hashes.
export function mth(hashes) {
  if (hashes.length === 0) return sha256(Buffer.alloc(0));
  if (hashes.length === 1) return hashes[0];
  const k = largestPowerOfTwoBelow(hashes.length);
  return node(mth(hashes.slice(0, k)), mth(hashes.slice(k)));
}

// PATH(m, D[n]) over leaf hashes (RFC 9162 §2.1.3.1).
export function path(m, hashes) {
  if (hashes.length <= 1) return [];
  const k = largestPowerOfTwoBelow(hashes.length);
  if (m < k) return [...path(m, hashes.slice(0, k)), mth(hashes.slice(k))];
  return [...path(m - k, hashes.slice(k)), mth(hashes.slice(0, k))];
}

// The canonical v1 leaf (docs/audit.md).
export function encodeLeaf({ time_micros, principal, role, purpose, action, result, record_ref }) {
  const parts = [Buffer.from([1])];
  const t = Buffer.alloc(8);
  t.writeBigInt64BE(BigInt(time_micros));
  parts.push(t);
  for (const s of [principal, role, purpose, action, result]) {
    const b = Buffer.from(s, 'utf8');
    const n = Buffer.alloc(2);
    n.writeUInt16BE(b.length);
    parts.push(n, b);
  }
  if (record_ref) parts.push(Buffer.from([1]), Buffer.from(record_ref, 'hex'));
  else parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function treeHeadSignedBytes(treeSize, timestampMicros, root) {
  const numbers = Buffer.alloc(16);
  numbers.writeBigUInt64BE(BigInt(treeSize), 0);
  numbers.writeBigInt64BE(BigInt(timestampMicros), 8);
  return Buffer.concat([Buffer.from('portcullis-audit-sth-v1\0', 'latin1'), numbers, root]);
}

export function newSigner() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  // The raw 32-byte key is the last 32 bytes of the SPKI DER encoding.
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  return {
    publicKeyHex: raw.toString('hex'),
    sign: (bytes) => sign(null, bytes, privateKey),
  };
}

// A signed tree head in the API's JSON shape (docs/api.md).
export function signedHead(signer, leafHashes, timestampMicros) {
  const root = mth(leafHashes);
  return {
    tree_size: leafHashes.length,
    timestamp_micros: timestampMicros,
    root_hash: root.toString('hex'),
    signature: signer.sign(treeHeadSignedBytes(leafHashes.length, timestampMicros, root)).toString('hex'),
    public_key: signer.publicKeyHex,
  };
}
