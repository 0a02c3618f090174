// Large cv::Mat buffers and scratch vectors on huge pages (src/common/huge_page_allocator.cc):
// where they go, that they hold what is written, and that freed mappings are reused within
// their bound.
#include "common/huge_page_allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include <opencv2/core.hpp>

namespace portcullis {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

bool HugePageAligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % (2 * kMiB) == 0;
}

cv::Mat MatOn(const HugePageMatAllocator& allocator, int rows, int cols, int type) {
  cv::Mat m;
  m.allocator = const_cast<HugePageMatAllocator*>(&allocator);
  m.create(rows, cols, type);
  return m;
}

TEST(HugePageMatAllocatorTest, LargeBuffersAreMappedAlignedAndHoldTheirData) {
  const HugePageMatAllocator allocator(4 * kMiB, 64 * kMiB);
  cv::Mat m = MatOn(allocator, 1500, 1000, CV_32FC1);  // 6 MB
  ASSERT_FALSE(m.empty());
  EXPECT_TRUE(HugePageAligned(m.data));
  EXPECT_TRUE(m.isContinuous());
  EXPECT_EQ(m.step[0], 1000 * sizeof(float));
  EXPECT_EQ(allocator.MappedBytes(), 6 * kMiB);  // 5.72 MiB rounded up to 2 MiB pages
  cv::randu(m, 0.0f, 1.0f);
  const cv::Mat copy = m.clone();  // the default allocator
  cv::Mat roi = m(cv::Rect(10, 20, 30, 40));
  roi.setTo(7.0f);
  EXPECT_EQ(m.at<float>(20, 10), 7.0f);
  EXPECT_EQ(m.at<float>(0, 0), copy.at<float>(0, 0));
  EXPECT_EQ(cv::norm(m(cv::Rect(0, 100, 1000, 1400)), copy(cv::Rect(0, 100, 1000, 1400))), 0.0);
}

TEST(HugePageMatAllocatorTest, SmallAndUserBuffersGoToOpenCvsAllocator) {
  const HugePageMatAllocator allocator(4 * kMiB, 64 * kMiB);
  cv::Mat small = MatOn(allocator, 100, 100, CV_8UC3);
  EXPECT_FALSE(small.empty());
  EXPECT_EQ(allocator.MappedBytes(), 0u);
  EXPECT_NE(small.u->currAllocator, &allocator);
  // Memory the caller provides is never replaced by a mapping.
  std::vector<float> user(2 * kMiB);
  const int sizes[] = {2048, 1024};
  std::size_t steps[] = {1024 * sizeof(float), sizeof(float)};
  cv::UMatData* u =
      allocator.allocate(2, sizes, CV_32F, user.data(), steps, cv::ACCESS_RW, cv::USAGE_DEFAULT);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->data, reinterpret_cast<uchar*>(user.data()));
  EXPECT_NE(u->currAllocator, &allocator);
  EXPECT_EQ(allocator.MappedBytes(), 0u);
  u->currAllocator->deallocate(u);
}

TEST(HugePageMatAllocatorTest, StepsOfAnNDimensionalBlobAreDense) {
  const HugePageMatAllocator allocator(kMiB, 64 * kMiB);
  const int sizes[] = {1, 16, 272, 480};  // a detector feature map
  cv::Mat blob;
  blob.allocator = const_cast<HugePageMatAllocator*>(&allocator);
  blob.create(4, sizes, CV_32F);
  EXPECT_EQ(blob.step[3], sizeof(float));
  EXPECT_EQ(blob.step[2], 480 * sizeof(float));
  EXPECT_EQ(blob.step[1], 272 * 480 * sizeof(float));
  EXPECT_EQ(blob.step[0], 16 * 272 * 480 * sizeof(float));
  EXPECT_EQ(blob.total(), std::size_t{16} * 272 * 480);
  EXPECT_GT(allocator.MappedBytes(), 0u);
}

TEST(HugePageMatAllocatorTest, FreedMappingsAreReusedWithinTheirBound) {
  const HugePageMatAllocator allocator(2 * kMiB, 12 * kMiB);
  const uchar* first = nullptr;
  {
    cv::Mat m = MatOn(allocator, 1024, 1024, CV_32FC1);  // 4 MiB
    first = m.data;
  }
  EXPECT_EQ(allocator.MappedBytes(), 0u);
  EXPECT_EQ(allocator.CachedBytes(), 4 * kMiB);
  {
    // The same size (or up to a quarter larger a mapping) takes the freed one back.
    cv::Mat again = MatOn(allocator, 1000, 1024, CV_32FC1);
    EXPECT_EQ(again.data, first);
    EXPECT_EQ(allocator.CachedBytes(), 0u);
    EXPECT_EQ(allocator.MappedBytes(), 4 * kMiB);
    cv::Mat larger = MatOn(allocator, 4096, 1024, CV_32FC1);  // 16 MiB: over the cache bound
    EXPECT_NE(larger.data, first);
  }
  // The 16 MiB one does not fit the 12 MiB cache and is returned; the 4 MiB one is kept.
  EXPECT_EQ(allocator.MappedBytes(), 0u);
  EXPECT_EQ(allocator.CachedBytes(), 4 * kMiB);
  {
    // Four 4 MiB buffers freed: the cache keeps the three most recent (12 MiB).
    std::vector<cv::Mat> mats;
    for (int i = 0; i < 4; ++i) mats.push_back(MatOn(allocator, 1024, 1024, CV_32FC1));
  }
  EXPECT_EQ(allocator.CachedBytes(), 12 * kMiB);
  cv::Mat other = MatOn(allocator, 2048, 2048, CV_32FC1);  // 16 MiB: no cached mapping fits
  EXPECT_EQ(allocator.MappedBytes(), 16 * kMiB);
  EXPECT_EQ(allocator.CachedBytes(), 12 * kMiB);
}

TEST(HugePageVectorAllocatorTest, LargeVectorsAreMappedAndKeepTheirContentsAsTheyGrow) {
  std::vector<float, HugePageVectorAllocator<float>> v(1000);
  std::iota(v.begin(), v.end(), 0.0f);
  v.resize(3 * kMiB);  // 12 MB: mapped (unless under AddressSanitizer)
  if (HugePageVectorThreshold() <= 12 * kMiB) {
    EXPECT_TRUE(HugePageAligned(v.data()));
  }
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(v[static_cast<std::size_t>(i)], static_cast<float>(i));
  EXPECT_EQ(v.back(), 0.0f);  // value-initialised
  v.assign(4 * kMiB, 2.0f);
  EXPECT_EQ(v[4 * kMiB - 1], 2.0f);
  v.clear();
  v.shrink_to_fit();
  EXPECT_EQ(v.capacity(), 0u);
}

TEST(HugePageMatAllocatorTest, InstallingItMakesItTheDefaultForNewMats) {
  const cv::MatAllocator* before = cv::Mat::getDefaultAllocator();
  TuneMemoryForNetworks();
  TuneMemoryForNetworks();  // once only
  const cv::MatAllocator* after = cv::Mat::getDefaultAllocator();
  if (HugePageVectorThreshold() == SIZE_MAX) {
    EXPECT_EQ(after, before);  // AddressSanitizer keeps OpenCV's allocator
    return;
  }
  ASSERT_NE(dynamic_cast<const HugePageMatAllocator*>(after), nullptr);
  cv::Mat large(4096, 2048, CV_32FC1, cv::Scalar(3.0f));  // 32 MiB: mapped
  EXPECT_EQ(large.u->currAllocator, after);
  EXPECT_TRUE(HugePageAligned(large.data));
  EXPECT_EQ(cv::sum(large)[0], 3.0 * 4096 * 2048);
  cv::Mat below(2048, 2048, CV_32FC1, cv::Scalar(1.0f));  // 16 MiB: the heap's
  EXPECT_NE(below.u->currAllocator, after);
}

}  // namespace
}  // namespace portcullis
