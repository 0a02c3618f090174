// RFC 9162 tree hashing and proofs: known Certificate Transparency vectors, and every (m, n) up
// to 64 against a naive transcription of the RFC's recursive definitions.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "audit/tree.h"
#include "portcullis/audit.h"

namespace portcullis::audit {
namespace {

Hash FromHex(const std::string& hex) {
  Hash h{};
  EXPECT_TRUE(HashFromHex(hex, &h)) << hex;
  return h;
}

std::string Unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// The eight leaves of the Certificate Transparency reference test suite.
std::vector<Hash> CtLeafHashes() {
  std::vector<Hash> out;
  for (const char* hex : {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                          "606162636465666768696a6b6c6d6e6f"}) {
    out.push_back(LeafHash(Unhex(hex)));
  }
  return out;
}

// ---- Naive reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 transcribed over vectors. ----

std::uint64_t K(std::uint64_t n) {
  std::uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

std::vector<Hash> Slice(const std::vector<Hash>& d, std::uint64_t a, std::uint64_t b) {
  return {d.begin() + static_cast<std::ptrdiff_t>(a), d.begin() + static_cast<std::ptrdiff_t>(b)};
}

Hash NaiveMth(const std::vector<Hash>& d) {
  if (d.empty()) return EmptyTreeHash();
  if (d.size() == 1) return d[0];
  const std::uint64_t k = K(d.size());
  return InteriorHash(NaiveMth(Slice(d, 0, k)), NaiveMth(Slice(d, k, d.size())));
}

std::vector<Hash> NaivePath(std::uint64_t m, const std::vector<Hash>& d) {
  if (d.size() <= 1) return {};
  const std::uint64_t k = K(d.size());
  std::vector<Hash> p;
  if (m < k) {
    p = NaivePath(m, Slice(d, 0, k));
    p.push_back(NaiveMth(Slice(d, k, d.size())));
  } else {
    p = NaivePath(m - k, Slice(d, k, d.size()));
    p.push_back(NaiveMth(Slice(d, 0, k)));
  }
  return p;
}

std::vector<Hash> NaiveSubproof(std::uint64_t m, const std::vector<Hash>& d, bool b) {
  const std::uint64_t n = d.size();
  if (m == n) return b ? std::vector<Hash>{} : std::vector<Hash>{NaiveMth(d)};
  const std::uint64_t k = K(n);
  std::vector<Hash> p;
  if (m <= k) {
    p = NaiveSubproof(m, Slice(d, 0, k), b);
    p.push_back(NaiveMth(Slice(d, k, n)));
  } else {
    p = NaiveSubproof(m - k, Slice(d, k, n), false);
    p.push_back(NaiveMth(Slice(d, 0, k)));
  }
  return p;
}

std::vector<Hash> SyntheticLeaves(std::size_t n) {
  std::vector<Hash> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(LeafHash("leaf " + std::to_string(i)));
  return out;
}

TEST(MerkleVectors, EmptyTreeAndEmptyLeaf) {
  EXPECT_EQ(HashToHex(EmptyTreeHash()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HashToHex(MerkleTreeHash({})), HashToHex(EmptyTreeHash()));
  // SHA-256(0x00): the hash of an empty leaf.
  EXPECT_EQ(HashToHex(LeafHash("")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

TEST(MerkleVectors, CertificateTransparencyRoots) {
  const std::vector<std::string> roots = {
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  const auto leaves = CtLeafHashes();
  for (std::size_t n = 1; n <= 8; ++n) {
    EXPECT_EQ(HashToHex(MerkleTreeHash(Slice(leaves, 0, n))), roots[n - 1]) << "n=" << n;
  }
}

TEST(MerkleVectors, CertificateTransparencyProofs) {
  const auto leaves = CtLeafHashes();
  internal::MemoryTree tree;
  for (const Hash& h : leaves) tree.AddLeafHash(h);
  InclusionProof inc;
  ASSERT_TRUE(internal::MakeInclusionProof(tree, 0, 8, &inc).ok());
  ASSERT_EQ(inc.path.size(), 3U);
  EXPECT_EQ(HashToHex(inc.path[0]),
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7");
  EXPECT_EQ(HashToHex(inc.path[1]),
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e");
  EXPECT_EQ(HashToHex(inc.path[2]),
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4");
  ASSERT_TRUE(internal::MakeInclusionProof(tree, 5, 8, &inc).ok());
  ASSERT_EQ(inc.path.size(), 3U);
  EXPECT_EQ(HashToHex(inc.path[0]),
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b");
  EXPECT_EQ(HashToHex(inc.path[1]),
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0");
  EXPECT_EQ(HashToHex(inc.path[2]),
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7");

  ConsistencyProof con;
  ASSERT_TRUE(internal::MakeConsistencyProof(tree, 3, 8, &con).ok());
  ASSERT_EQ(con.path.size(), 4U);
  EXPECT_EQ(HashToHex(con.path[0]),
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7");
  EXPECT_EQ(HashToHex(con.path[1]),
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7");
  EXPECT_EQ(HashToHex(con.path[2]),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");
  EXPECT_EQ(HashToHex(con.path[3]),
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4");
  ASSERT_TRUE(internal::MakeConsistencyProof(tree, 4, 8, &con).ok());
  ASSERT_EQ(con.path.size(), 1U);
  EXPECT_EQ(HashToHex(con.path[0]),
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4");
  EXPECT_TRUE(VerifyConsistency(
                  con, FromHex("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
                  FromHex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"))
                  .ok());
}

TEST(Merkle, RootsMatchNaiveReferenceUpTo70) {
  const auto leaves = SyntheticLeaves(70);
  internal::MemoryTree tree;
  internal::Frontier frontier;
  std::string nodes;
  for (std::size_t n = 0; n <= leaves.size(); ++n) {
    const auto prefix = Slice(leaves, 0, n);
    const Hash expected = NaiveMth(prefix);
    EXPECT_EQ(MerkleTreeHash(prefix), expected) << n;
    EXPECT_EQ(frontier.Root(), expected) << n;
    Hash root{};
    ASSERT_TRUE(internal::RootAt(tree, n, &root).ok());
    EXPECT_EQ(root, expected) << n;
    if (n < leaves.size()) {
      tree.AddLeafHash(leaves[n]);
      frontier.Add(leaves[n], &nodes);
    }
  }
  // The store order: 2n - popcount(n) nodes, and every node sits where NodePosition says.
  EXPECT_EQ(nodes.size() / 32, internal::NodesFor(70));
  for (int level = 0; level < 7; ++level) {
    for (std::uint64_t j = 0; ((j + 1) << level) <= 70; ++j) {
      Hash want{};
      ASSERT_TRUE(tree.Node(level, j, &want).ok());
      Hash got{};
      std::copy_n(nodes.data() + internal::NodePosition(level, j) * 32, 32,
                  reinterpret_cast<char*>(got.data()));
      EXPECT_EQ(got, want) << level << "," << j;
    }
  }
  for (std::uint64_t n = 0; n < 300; ++n) {
    EXPECT_EQ(internal::LeavesCoveredBy(internal::NodesFor(n)), n);
  }
}

TEST(Merkle, InclusionProofsForAllIndicesUpTo64) {
  const auto leaves = SyntheticLeaves(64);
  internal::MemoryTree tree;
  for (const Hash& h : leaves) tree.AddLeafHash(h);
  for (std::uint64_t n = 1; n <= 64; ++n) {
    const auto prefix = Slice(leaves, 0, n);
    const Hash root = NaiveMth(prefix);
    for (std::uint64_t m = 0; m < n; ++m) {
      InclusionProof proof;
      ASSERT_TRUE(internal::MakeInclusionProof(tree, m, n, &proof).ok());
      ASSERT_EQ(proof.path, NaivePath(m, prefix)) << m << "/" << n;
      ASSERT_TRUE(VerifyInclusion(leaves[m], proof, root).ok()) << m << "/" << n;
      // Each way of lying must fail.
      EXPECT_FALSE(VerifyInclusion(leaves[(m + 1) % 64], proof, root).ok());
      EXPECT_FALSE(VerifyInclusion(leaves[m], proof, LeafHash("other root")).ok());
      if (!proof.path.empty()) {
        InclusionProof bad = proof;
        bad.path[bad.path.size() / 2][0] ^= 1;
        EXPECT_FALSE(VerifyInclusion(leaves[m], bad, root).ok());
        bad = proof;
        bad.path.pop_back();
        EXPECT_FALSE(VerifyInclusion(leaves[m], bad, root).ok());
      }
      InclusionProof longer = proof;
      longer.path.push_back(root);
      EXPECT_FALSE(VerifyInclusion(leaves[m], longer, root).ok());
      if (n > 1) {
        InclusionProof wrong_index = proof;
        wrong_index.leaf_index = (m + 1) % n;
        EXPECT_FALSE(VerifyInclusion(leaves[m], wrong_index, root).ok()) << m << "/" << n;
      }
    }
  }
  InclusionProof out_of_range;
  EXPECT_EQ(internal::MakeInclusionProof(tree, 5, 5, &out_of_range).code(),
            Status::Code::kInvalidArgument);
  out_of_range.leaf_index = 5;
  out_of_range.tree_size = 5;
  EXPECT_EQ(VerifyInclusion(leaves[0], out_of_range, leaves[0]).code(),
            Status::Code::kInvalidArgument);
}

TEST(Merkle, ConsistencyProofsForAllSizesUpTo64) {
  const auto leaves = SyntheticLeaves(64);
  internal::MemoryTree tree;
  for (const Hash& h : leaves) tree.AddLeafHash(h);
  for (std::uint64_t n = 1; n <= 64; ++n) {
    const Hash second = NaiveMth(Slice(leaves, 0, n));
    for (std::uint64_t m = 0; m <= n; ++m) {
      const Hash first = NaiveMth(Slice(leaves, 0, m));
      ConsistencyProof proof;
      ASSERT_TRUE(internal::MakeConsistencyProof(tree, m, n, &proof).ok());
      if (m > 0) {
        ASSERT_EQ(proof.path, NaiveSubproof(m, Slice(leaves, 0, n), true)) << m << "/" << n;
      }
      ASSERT_TRUE(VerifyConsistency(proof, first, second).ok()) << m << "/" << n;
      if (m == 0) continue;
      // A forked history (another leaf at m-1) must not verify as consistent.
      auto forked = Slice(leaves, 0, m);
      forked[m - 1] = LeafHash("forged");
      EXPECT_FALSE(VerifyConsistency(proof, NaiveMth(forked), second).ok()) << m << "/" << n;
      if (m < n) {
        EXPECT_FALSE(VerifyConsistency(proof, first, LeafHash("x")).ok());
        ConsistencyProof bad = proof;
        bad.path.back()[3] ^= 0x40;
        EXPECT_FALSE(VerifyConsistency(bad, first, second).ok()) << m << "/" << n;
        bad = proof;
        bad.path.pop_back();
        EXPECT_FALSE(VerifyConsistency(bad, first, second).ok()) << m << "/" << n;
        bad = proof;
        bad.path.push_back(second);
        EXPECT_FALSE(VerifyConsistency(bad, first, second).ok()) << m << "/" << n;
      }
    }
  }
  ConsistencyProof backwards;
  EXPECT_EQ(internal::MakeConsistencyProof(tree, 9, 8, &backwards).code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace portcullis::audit
