// Metrics: the Prometheus text format that scrapers parse, and values tests and the console read.
#include "server/metrics.h"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace portcullis::server {
namespace {

TEST(MetricsTest, CountersRenderWithHelpTypeAndLabels) {
  Metrics metrics;
  metrics.Increment("requests_total", "HTTP requests", {{"route", "/v1/x"}, {"status", "200"}});
  metrics.Increment("requests_total", "HTTP requests", {{"route", "/v1/x"}, {"status", "200"}}, 2);
  const std::string text = metrics.RenderPrometheus();
  EXPECT_NE(text.find("# HELP portcullis_requests_total HTTP requests\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE portcullis_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("portcullis_requests_total{route=\"/v1/x\",status=\"200\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(metrics.Value("requests_total", {{"route", "/v1/x"}, {"status", "200"}}), 3);
  EXPECT_EQ(metrics.Value("requests_total", {{"route", "/v1/y"}}), 0);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Metrics metrics;
  metrics.Set("weird", "escaping", {{"v", "a\"b\\c\nd"}}, 1);
  EXPECT_NE(metrics.RenderPrometheus().find("portcullis_weird{v=\"a\\\"b\\\\c\\nd\"} 1\n"),
            std::string::npos);
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Metrics metrics;
  metrics.Observe("latency_seconds", "latency", {}, 0.0005);  // first bucket
  metrics.Observe("latency_seconds", "latency", {}, 0.2);     // le=0.25
  metrics.Observe("latency_seconds", "latency", {}, 60);      // only +Inf
  const std::string text = metrics.RenderPrometheus();
  EXPECT_NE(text.find("portcullis_latency_seconds_bucket{le=\"0.001\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("portcullis_latency_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("portcullis_latency_seconds_bucket{le=\"0.25\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("portcullis_latency_seconds_bucket{le=\"10\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("portcullis_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("portcullis_latency_seconds_count 3\n"), std::string::npos);
  EXPECT_EQ(metrics.Value("latency_seconds"), 3);
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  Metrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) metrics.Increment("hits_total", "hits");
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(metrics.Value("hits_total"), 40000);
}

}  // namespace
}  // namespace portcullis::server
