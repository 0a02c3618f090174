// The Merkle tree behind the log: where its nodes come from (a file or memory) and the RFC 9162
// proof constructions over any such source.
//
// A node (level k, index j) is the hash of the complete, aligned subtree over leaves
// [j * 2^k, (j + 1) * 2^k). Every subtree RFC 9162's recursion asks for is either such a node or
// splits into one on the left and a smaller subtree on the right, so any MTH(D[a:b]) costs
// O(log n) node reads, and a proof O(log n) subtrees.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "audit/format.h"
#include "portcullis/audit.h"

namespace portcullis::audit::internal {

class NodeSource {
 public:
  virtual ~NodeSource() = default;
  virtual Status Node(int level, std::uint64_t index, Hash* hash) const = 0;
};

// MTH(D[begin:end]) for 0 <= begin < end <= the source's size.
Status SubtreeHash(const NodeSource& src, std::uint64_t begin, std::uint64_t end, Hash* hash);
Status RootAt(const NodeSource& src, std::uint64_t size, Hash* root);
Status MakeInclusionProof(const NodeSource& src, std::uint64_t index, std::uint64_t size,
                          InclusionProof* proof);
Status MakeConsistencyProof(const NodeSource& src, std::uint64_t first, std::uint64_t second,
                            ConsistencyProof* proof);

// All levels in memory: the verifier rebuilds the tree from the leaves into one of these.
class MemoryTree final : public NodeSource {
 public:
  void AddLeafHash(const Hash& leaf_hash);
  [[nodiscard]] std::uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  [[nodiscard]] const Hash& leaf_hash(std::uint64_t i) const { return levels_[0][i]; }
  Status Node(int level, std::uint64_t index, Hash* hash) const override;

 private:
  std::vector<std::vector<Hash>> levels_;
};

// Nodes in the order a post-order walk completes them: appending leaf m (1-based) writes its
// leaf hash, then the node of every level that leaf completes. After n leaves the store holds
// 2n - popcount(n) nodes, and node (k, j) sits at NodesBefore((j + 1) * 2^k - 1) + k: O(1)
// addressing into one append-only file.
std::uint64_t NodesFor(std::uint64_t leaves);
std::uint64_t NodePosition(int level, std::uint64_t index);
// The most leaves whose nodes fit in node_count nodes.
std::uint64_t LeavesCoveredBy(std::uint64_t node_count);

// The right edge of the tree: the complete subtrees of the binary decomposition of its size, in
// order, with their levels. Appending a leaf merges equal levels; the root folds them from the
// right.
class Frontier {
 public:
  // Appends the leaf and returns (via *new_nodes, appended) the nodes it completes, in store order.
  void Add(const Hash& leaf_hash, std::string* new_nodes);
  [[nodiscard]] Hash Root() const;
  [[nodiscard]] std::uint64_t size() const { return size_; }
  // Rebuilds the frontier of a tree of `size` leaves from its nodes.
  static Status Load(const NodeSource& src, std::uint64_t size, Frontier* frontier);

 private:
  std::vector<std::pair<int, Hash>> nodes_;
  std::uint64_t size_ = 0;
};

// The `tree` file: header + nodes (32 bytes each) in NodePosition order.
class TreeFileSource final : public NodeSource {
 public:
  TreeFileSource(int fd, std::string path, std::uint64_t node_count)
      : fd_(fd), path_(std::move(path)), node_count_(node_count) {}
  Status Node(int level, std::uint64_t index, Hash* hash) const override;
  void set_node_count(std::uint64_t n) { node_count_ = n; }

 private:
  int fd_;
  std::string path_;
  std::uint64_t node_count_;
};

}  // namespace portcullis::audit::internal
