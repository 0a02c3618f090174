// Offline verification of a log directory with only the public key.
#include <algorithm>

#include "audit/format.h"
#include "audit/tree.h"
#include "portcullis/audit.h"

namespace portcullis::audit {
namespace {

using internal::FrameScan;
using internal::TailState;

Status Fail(VerifyReport* report, std::int64_t index, std::string problem) {
  report->first_bad_index = index;
  report->problem = std::move(problem);
  return Status::Corruption(report->problem);
}

// The leaf hashes the writer stored in the tree file (level 0), if it can be read. They are only
// trusted once they hash to a signed root; then the first leaf whose recomputed hash differs is
// exactly the first altered, deleted or reordered event.
std::vector<Hash> StoredLeafHashes(const std::string& tree_path, std::uint64_t limit) {
  std::string contents;
  std::vector<Hash> hashes;
  if (!internal::ReadWholeFile(tree_path, &contents).ok() ||
      contents.size() < internal::kHeaderSize ||
      contents.substr(0, internal::kHeaderSize) != internal::kTreeMagic) {
    return hashes;
  }
  const std::uint64_t nodes = (contents.size() - internal::kHeaderSize) / sizeof(Hash);
  const std::uint64_t leaves = std::min(limit, internal::LeavesCoveredBy(nodes));
  hashes.resize(leaves);
  for (std::uint64_t i = 0; i < leaves; ++i) {
    std::copy_n(contents.data() + internal::kHeaderSize + internal::NodePosition(0, i) * 32, 32,
                reinterpret_cast<char*>(hashes[i].data()));
  }
  return hashes;
}

// The first bad leaf below `size`, where the leaves should hash to `root` but do not and the
// leaves below `known_good` are known to be right.
std::int64_t LocateBadLeaf(const std::string& tree_path, const internal::MemoryTree& tree,
                           std::uint64_t size, const Hash& root, std::uint64_t known_good,
                           std::string* how) {
  std::vector<Hash> stored = StoredLeafHashes(tree_path, size);
  if (stored.size() >= size) {
    stored.resize(size);
    if (MerkleTreeHash(stored) == root) {
      const std::uint64_t n = std::min<std::uint64_t>(size, tree.size());
      for (std::uint64_t i = 0; i < n; ++i) {
        if (tree.leaf_hash(i) != stored[i]) {
          *how = "leaf differs from the one signed";
          return static_cast<std::int64_t>(i);
        }
      }
      *how = "leaves missing";
      return static_cast<std::int64_t>(n);
    }
  }
  *how = "the tree store was rewritten too, so the first bad leaf is at or after this index";
  return static_cast<std::int64_t>(known_good);
}

}  // namespace

Status VerifyLog(const std::string& dir, const PublicKey& key, const VerifyOptions& options,
                 VerifyReport* report) {
  *report = VerifyReport{};
  const std::string events_path = dir + "/" + internal::kEventsFile;
  const std::string sth_path = dir + "/" + internal::kSthFile;
  const std::string tree_path = dir + "/" + internal::kTreeFile;

  // Tree heads first: they say what must be there.
  std::string contents;
  PORTCULLIS_RETURN_IF_ERROR(internal::ReadWholeFile(sth_path, &contents));
  FrameScan scan;
  Status s = internal::ScanFrames(contents, internal::kSthMagic, internal::kSthPayload, &scan);
  if (!s.ok()) return Fail(report, -1, "sth.log: " + s.message());
  if (scan.tail == TailState::kCorrupt) {
    report->bad_tree_head = static_cast<std::int64_t>(scan.offsets.size());
    return Fail(report, -1, "sth.log: " + scan.problem);
  }
  if (scan.tail == TailState::kTorn) report->torn_tail = true;  // a head whose batch never acked
  std::vector<SignedTreeHead> heads;
  for (std::size_t i = 0; i < scan.offsets.size(); ++i) {
    SignedTreeHead sth;
    s = internal::DecodeTreeHead(std::string_view(contents).substr(
                                     scan.offsets[i] + internal::kFrameHeader, scan.lengths[i]),
                                 &sth);
    const bool signed_ok = s.ok() && VerifyTreeHeadSignature(sth, key).ok();
    if (!signed_ok) {
      report->bad_tree_head = static_cast<std::int64_t>(i);
      return Fail(report, -1,
                  "sth.log: tree head " + std::to_string(i) +
                      (s.ok() ? ": signature does not verify with this key" : ": " + s.message()));
    }
    if (!heads.empty() && (sth.tree_size < heads.back().tree_size ||
                           sth.timestamp_micros < heads.back().timestamp_micros)) {
      report->bad_tree_head = static_cast<std::int64_t>(i);
      return Fail(report, -1,
                  "sth.log: tree head " + std::to_string(i) + " goes back in size or time");
    }
    heads.push_back(sth);
  }
  report->sth_count = heads.size();
  report->signed_size = heads.empty() ? 0 : heads.back().tree_size;

  // Leaves: recompute the whole tree.
  PORTCULLIS_RETURN_IF_ERROR(internal::ReadWholeFile(events_path, &contents));
  s = internal::ScanFrames(contents, internal::kEventsMagic, internal::kMaxLeafBytes, &scan);
  if (!s.ok()) return Fail(report, 0, "events.log: " + s.message());
  const std::uint64_t n = scan.offsets.size();
  if (scan.tail == TailState::kCorrupt) {
    return Fail(report, static_cast<std::int64_t>(n), "events.log: " + scan.problem);
  }
  if (scan.tail == TailState::kTorn) {
    if (n < report->signed_size) {
      return Fail(report, static_cast<std::int64_t>(n),
                  "events.log: " + scan.problem + ", inside the signed part of the log");
    }
    report->torn_tail = true;
  }
  internal::MemoryTree tree;
  LeafRecord record;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::string_view leaf = std::string_view(contents).substr(
        scan.offsets[i] + internal::kFrameHeader, scan.lengths[i]);
    s = DecodeLeaf(leaf, &record);
    if (!s.ok()) {
      return Fail(report, static_cast<std::int64_t>(i),
                  "events.log: leaf " + std::to_string(i) + ": " + s.message());
    }
    tree.AddLeafHash(LeafHash(leaf));
  }
  contents.clear();
  report->tree_size = n;
  PORTCULLIS_RETURN_IF_ERROR(internal::RootAt(tree, n, &report->root_hash));

  // Every head matches the tree at its size, and each is consistent with the one before.
  std::uint64_t good_size = 0;
  for (std::size_t i = 0; i < heads.size(); ++i) {
    const SignedTreeHead& h = heads[i];
    if (h.tree_size > n) {
      report->bad_tree_head = static_cast<std::int64_t>(i);
      std::string how;
      const std::int64_t bad =
          LocateBadLeaf(tree_path, tree, h.tree_size, h.root_hash, good_size, &how);
      return Fail(report, bad,
                  "tree head " + std::to_string(i) + " signs " + std::to_string(h.tree_size) +
                      " events but events.log holds " + std::to_string(n) + " (" + how + ")");
    }
    Hash root{};
    PORTCULLIS_RETURN_IF_ERROR(internal::RootAt(tree, h.tree_size, &root));
    if (root != h.root_hash) {
      report->bad_tree_head = static_cast<std::int64_t>(i);
      std::string how;
      const std::int64_t bad =
          LocateBadLeaf(tree_path, tree, h.tree_size, h.root_hash, good_size, &how);
      return Fail(report, bad,
                  "the events do not match tree head " + std::to_string(i) + " (size " +
                      std::to_string(h.tree_size) + "): " + how);
    }
    if (i > 0) {
      ConsistencyProof proof;
      PORTCULLIS_RETURN_IF_ERROR(
          internal::MakeConsistencyProof(tree, heads[i - 1].tree_size, h.tree_size, &proof));
      s = VerifyConsistency(proof, heads[i - 1].root_hash, h.root_hash);
      if (!s.ok()) {
        report->bad_tree_head = static_cast<std::int64_t>(i);
        return Fail(report, -1,
                    "tree heads " + std::to_string(i - 1) + " and " + std::to_string(i) +
                        " are not consistent: " + s.message());
      }
    }
    good_size = h.tree_size;
  }

  // Witnessed heads: the log must extend every one of them. A history rewritten (and re-signed
  // with the stolen key) fails here even though it is internally consistent.
  if (!options.witness_path.empty()) {
    std::vector<SignedTreeHead> witnessed;
    PORTCULLIS_RETURN_IF_ERROR(ReadWitness(options.witness_path, &witnessed));
    std::uint64_t witness_good = 0;
    for (std::size_t i = 0; i < witnessed.size(); ++i) {
      const SignedTreeHead& w = witnessed[i];
      if (!VerifyTreeHeadSignature(w, key).ok()) {
        report->bad_tree_head = static_cast<std::int64_t>(i);
        return Fail(report, -1,
                    "witness head " + std::to_string(i) + ": signature does not verify");
      }
      if (w.tree_size > n) {
        report->bad_tree_head = static_cast<std::int64_t>(i);
        return Fail(report, static_cast<std::int64_t>(n),
                    "witness head " + std::to_string(i) + " has " + std::to_string(w.tree_size) +
                        " events; the log has only " + std::to_string(n));
      }
      ConsistencyProof proof;
      PORTCULLIS_RETURN_IF_ERROR(internal::MakeConsistencyProof(tree, w.tree_size, n, &proof));
      s = VerifyConsistency(proof, w.root_hash, report->root_hash);
      if (!s.ok()) {
        report->bad_tree_head = static_cast<std::int64_t>(i);
        return Fail(report, static_cast<std::int64_t>(std::min(witness_good, w.tree_size)),
                    "the log is not consistent with witness head " + std::to_string(i) + " (size " +
                        std::to_string(w.tree_size) +
                        "): history was rewritten at or after this index");
      }
      witness_good = std::max(witness_good, w.tree_size);
    }
    report->witness_heads = witnessed.size();
  }
  return Status::Ok();
}

}  // namespace portcullis::audit
