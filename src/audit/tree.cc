// RFC 9162 §2.1: tree hashing, proof generation over a node source, proof verification.
#include "audit/tree.h"

#include <sodium.h>

#include <bit>
#include <cstring>

namespace portcullis::audit {
namespace internal {
namespace {

// The largest power of two strictly less than n (n >= 2): RFC 9162's split point k.
std::uint64_t SplitPoint(std::uint64_t n) { return std::bit_floor(n - 1); }

}  // namespace

Status SubtreeHash(const NodeSource& src, std::uint64_t begin, std::uint64_t end, Hash* hash) {
  const std::uint64_t n = end - begin;
  if (std::has_single_bit(n) && begin % n == 0) {
    return src.Node(std::countr_zero(n), begin / n, hash);
  }
  const std::uint64_t k = SplitPoint(n);
  Hash left{};
  Hash right{};
  PORTCULLIS_RETURN_IF_ERROR(SubtreeHash(src, begin, begin + k, &left));
  PORTCULLIS_RETURN_IF_ERROR(SubtreeHash(src, begin + k, end, &right));
  *hash = InteriorHash(left, right);
  return Status::Ok();
}

Status RootAt(const NodeSource& src, std::uint64_t size, Hash* root) {
  if (size == 0) {
    *root = EmptyTreeHash();
    return Status::Ok();
  }
  return SubtreeHash(src, 0, size, root);
}

namespace {

// PATH(m, D[begin:end]) with m relative to begin.
Status Path(const NodeSource& src, std::uint64_t m, std::uint64_t begin, std::uint64_t end,
            std::vector<Hash>* path) {
  const std::uint64_t n = end - begin;
  if (n == 1) return Status::Ok();
  const std::uint64_t k = SplitPoint(n);
  Hash sibling{};
  if (m < k) {
    PORTCULLIS_RETURN_IF_ERROR(Path(src, m, begin, begin + k, path));
    PORTCULLIS_RETURN_IF_ERROR(SubtreeHash(src, begin + k, end, &sibling));
  } else {
    PORTCULLIS_RETURN_IF_ERROR(Path(src, m - k, begin + k, end, path));
    PORTCULLIS_RETURN_IF_ERROR(SubtreeHash(src, begin, begin + k, &sibling));
  }
  path->push_back(sibling);
  return Status::Ok();
}

// SUBPROOF(m, D[begin:end], b).
Status SubProof(const NodeSource& src, std::uint64_t m, std::uint64_t begin, std::uint64_t end,
                bool whole, std::vector<Hash>* path) {
  const std::uint64_t n = end - begin;
  Hash h{};
  if (m == n) {
    if (!whole) {
      PORTCULLIS_RETURN_IF_ERROR(SubtreeHash(src, begin, end, &h));
      path->push_back(h);
    }
    return Status::Ok();
  }
  const std::uint64_t k = SplitPoint(n);
  if (m <= k) {
    PORTCULLIS_RETURN_IF_ERROR(SubProof(src, m, begin, begin + k, whole, path));
    PORTCULLIS_RETURN_IF_ERROR(SubtreeHash(src, begin + k, end, &h));
  } else {
    PORTCULLIS_RETURN_IF_ERROR(SubProof(src, m - k, begin + k, end, false, path));
    PORTCULLIS_RETURN_IF_ERROR(SubtreeHash(src, begin, begin + k, &h));
  }
  path->push_back(h);
  return Status::Ok();
}

}  // namespace

Status MakeInclusionProof(const NodeSource& src, std::uint64_t index, std::uint64_t size,
                          InclusionProof* proof) {
  if (index >= size) {
    return Status::InvalidArgument("leaf index " + std::to_string(index) +
                                   " is not in a tree of size " + std::to_string(size));
  }
  proof->leaf_index = index;
  proof->tree_size = size;
  proof->path.clear();
  return Path(src, index, 0, size, &proof->path);
}

Status MakeConsistencyProof(const NodeSource& src, std::uint64_t first, std::uint64_t second,
                            ConsistencyProof* proof) {
  if (first > second) {
    return Status::InvalidArgument("consistency needs old size <= new size (" +
                                   std::to_string(first) + " > " + std::to_string(second) + ")");
  }
  proof->first_size = first;
  proof->second_size = second;
  proof->path.clear();
  // Every tree is consistent with the empty tree; RFC 9162 defines no proof for it.
  if (first == 0) return Status::Ok();
  return SubProof(src, first, 0, second, true, &proof->path);
}

void MemoryTree::AddLeafHash(const Hash& leaf_hash) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf_hash);
  for (std::size_t level = 0; levels_[level].size() % 2 == 0; ++level) {
    if (levels_.size() == level + 1) levels_.emplace_back();
    const auto& below = levels_[level];
    levels_[level + 1].push_back(InteriorHash(below[below.size() - 2], below.back()));
  }
}

Status MemoryTree::Node(int level, std::uint64_t index, Hash* hash) const {
  const auto l = static_cast<std::size_t>(level);
  if (l >= levels_.size() || index >= levels_[l].size()) {
    return Status::Internal("tree node (" + std::to_string(level) + ", " + std::to_string(index) +
                            ") is not in the tree");
  }
  *hash = levels_[l][index];
  return Status::Ok();
}

std::uint64_t NodesFor(std::uint64_t leaves) {
  return 2 * leaves - static_cast<std::uint64_t>(std::popcount(leaves));
}

std::uint64_t NodePosition(int level, std::uint64_t index) {
  const std::uint64_t completing_leaf = (index + 1) << level;  // 1-based count
  return NodesFor(completing_leaf - 1) + static_cast<std::uint64_t>(level);
}

std::uint64_t LeavesCoveredBy(std::uint64_t node_count) {
  // NodesFor is increasing; binary search the largest m with NodesFor(m) <= node_count.
  std::uint64_t lo = 0;
  std::uint64_t hi = node_count / 2 + 64;  // 2m - popcount(m) >= 2m - 64
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo + 1) / 2;
    if (NodesFor(mid) <= node_count) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

void Frontier::Add(const Hash& leaf_hash, std::string* new_nodes) {
  Hash node = leaf_hash;
  int level = 0;
  new_nodes->append(reinterpret_cast<const char*>(node.data()), node.size());
  while (!nodes_.empty() && nodes_.back().first == level) {
    node = InteriorHash(nodes_.back().second, node);
    nodes_.pop_back();
    ++level;
    new_nodes->append(reinterpret_cast<const char*>(node.data()), node.size());
  }
  nodes_.emplace_back(level, node);
  ++size_;
}

Hash Frontier::Root() const {
  if (nodes_.empty()) return EmptyTreeHash();
  Hash root = nodes_.back().second;
  for (std::size_t i = nodes_.size() - 1; i-- > 0;) root = InteriorHash(nodes_[i].second, root);
  return root;
}

Status Frontier::Load(const NodeSource& src, std::uint64_t size, Frontier* frontier) {
  Frontier f;
  std::uint64_t start = 0;
  for (int level = 63; level >= 0; --level) {
    const std::uint64_t span = std::uint64_t{1} << level;
    if ((size & span) == 0) continue;
    Hash h{};
    PORTCULLIS_RETURN_IF_ERROR(src.Node(level, start >> level, &h));
    f.nodes_.emplace_back(level, h);
    start += span;
  }
  f.size_ = size;
  *frontier = std::move(f);
  return Status::Ok();
}

Status TreeFileSource::Node(int level, std::uint64_t index, Hash* hash) const {
  const std::uint64_t pos = NodePosition(level, index);
  if (pos >= node_count_) {
    return Status::Corruption(path_ + ": node (" + std::to_string(level) + ", " +
                              std::to_string(index) + ") is past the end of the tree store");
  }
  return PReadAll(fd_, path_, reinterpret_cast<char*>(hash->data()), hash->size(),
                  kHeaderSize + pos * hash->size());
}

}  // namespace internal

Hash EmptyTreeHash() {
  Hash h{};
  crypto_hash_sha256(h.data(), nullptr, 0);
  return h;
}

Hash LeafHash(std::string_view leaf) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  static constexpr unsigned char kLeafPrefix = 0x00;
  crypto_hash_sha256_update(&st, &kLeafPrefix, 1);
  crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(leaf.data()), leaf.size());
  Hash h{};
  crypto_hash_sha256_final(&st, h.data());
  return h;
}

Hash InteriorHash(const Hash& left, const Hash& right) {
  unsigned char buf[65];
  buf[0] = 0x01;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  Hash h{};
  crypto_hash_sha256(h.data(), buf, sizeof(buf));
  return h;
}

Hash MerkleTreeHash(const std::vector<Hash>& leaf_hashes) {
  if (leaf_hashes.empty()) return EmptyTreeHash();
  internal::MemoryTree tree;
  for (const Hash& h : leaf_hashes) tree.AddLeafHash(h);
  Hash root{};
  // Cannot fail: every node the recursion asks for is in the tree.
  (void)internal::RootAt(tree, leaf_hashes.size(), &root);
  return root;
}

Status VerifyInclusion(const Hash& leaf_hash, const InclusionProof& proof, const Hash& root) {
  if (proof.leaf_index >= proof.tree_size) {
    return Status::InvalidArgument("inclusion proof: leaf index not below tree size");
  }
  std::uint64_t fn = proof.leaf_index;
  std::uint64_t sn = proof.tree_size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof.path) {
    if (sn == 0) return Status::Corruption("inclusion proof is too long");
    if ((fn & 1U) != 0 || fn == sn) {
      r = InteriorHash(p, r);
      while ((fn & 1U) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = InteriorHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Status::Corruption("inclusion proof is too short");
  if (r != root) return Status::Corruption("inclusion proof does not lead to the root");
  return Status::Ok();
}

Status VerifyConsistency(const ConsistencyProof& proof, const Hash& first_root,
                         const Hash& second_root) {
  const std::uint64_t first = proof.first_size;
  const std::uint64_t second = proof.second_size;
  if (first > second) return Status::InvalidArgument("consistency proof: old size > new size");
  if (first == 0) {
    if (!proof.path.empty()) return Status::Corruption("consistency proof from 0 must be empty");
    if (first_root != EmptyTreeHash()) return Status::Corruption("old root is not the empty tree");
    return Status::Ok();
  }
  if (first == second) {
    if (!proof.path.empty())
      return Status::Corruption("consistency proof of equal sizes not empty");
    if (first_root != second_root) return Status::Corruption("equal sizes with different roots");
    return Status::Ok();
  }
  std::vector<Hash> path = proof.path;
  if (std::has_single_bit(first)) path.insert(path.begin(), first_root);
  if (path.empty()) return Status::Corruption("consistency proof is empty");
  std::uint64_t fn = first - 1;
  std::uint64_t sn = second - 1;
  while ((fn & 1U) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (std::size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return Status::Corruption("consistency proof is too long");
    if ((fn & 1U) != 0 || fn == sn) {
      fr = InteriorHash(c, fr);
      sr = InteriorHash(c, sr);
      while ((fn & 1U) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = InteriorHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Status::Corruption("consistency proof is too short");
  if (fr != first_root) return Status::Corruption("consistency proof does not lead to old root");
  if (sr != second_root) return Status::Corruption("consistency proof does not lead to new root");
  return Status::Ok();
}

}  // namespace portcullis::audit
