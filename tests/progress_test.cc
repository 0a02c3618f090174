#include "cli/progress.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace portcullis::cli {
namespace {

// Everything written to a FILE*, read back: a tmpfile() is portable and needs no cleanup.
std::string Contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[256];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
  return s;
}

class TmpFile {
 public:
  TmpFile() : f_(std::tmpfile()) {}
  ~TmpFile() {
    if (f_ != nullptr) std::fclose(f_);
  }
  TmpFile(const TmpFile&) = delete;
  TmpFile& operator=(const TmpFile&) = delete;
  std::FILE* get() const { return f_; }

 private:
  std::FILE* f_;
};

TEST(ProgressTest, RendersKnownTotal) {
  ProgressBar bar("plate read", 100, false);
  const std::string line = bar.Render(45, 45 / 12.3);
  EXPECT_EQ(line, "plate read  [#########-----------]  45/100  45%  12.3/s  ETA 0:04");
  EXPECT_LE(line.size(), 80u);
}

TEST(ProgressTest, RendersStartAndEnd) {
  ProgressBar bar("x", 10, false);
  const std::string start = bar.Render(0, 0);
  EXPECT_NE(start.find("[--------------------]"), std::string::npos) << start;
  EXPECT_NE(start.find("0/10"), std::string::npos);
  EXPECT_NE(start.find("0%"), std::string::npos);
  EXPECT_NE(start.find("ETA"), std::string::npos);
  const std::string end = bar.Render(10, 2);
  EXPECT_NE(end.find("[####################]"), std::string::npos) << end;
  EXPECT_NE(end.find("10/10"), std::string::npos);
  EXPECT_NE(end.find("100%"), std::string::npos);
  EXPECT_NE(end.find("5.0/s"), std::string::npos);
}

TEST(ProgressTest, RendersLongEtaWithHours) {
  ProgressBar bar("x", 100000, false);
  // 1 item/s with 99999 left: 27:46:39.
  EXPECT_NE(bar.Render(1, 1).find("ETA 27:46:39"), std::string::npos) << bar.Render(1, 1);
}

TEST(ProgressTest, RendersUnknownTotal) {
  ProgressBar bar("plate read", -1, false);
  EXPECT_EQ(bar.Render(45, 45 / 12.3), "plate read  45 done  12.3/s");
}

TEST(ProgressTest, SetTotalSwitchesToBar) {
  ProgressBar bar("frames", -1, false);
  EXPECT_EQ(bar.Render(5, 1).find('['), std::string::npos);
  bar.SetTotal(20);
  EXPECT_NE(bar.Render(5, 1).find("5/20"), std::string::npos);
}

TEST(ProgressTest, OddInputsStayWellFormed) {
  ProgressBar empty("empty", 0, false);
  EXPECT_NE(empty.Render(0, 0).find("100%"), std::string::npos);
  ProgressBar over("over", 10, false);
  const std::string line = over.Render(15, -3);  // more than planned, clock went backwards
  EXPECT_NE(line.find("15/10"), std::string::npos) << line;
  EXPECT_NE(line.find("[####################]"), std::string::npos) << line;
  EXPECT_NE(over.Render(-4, 1).find("0/10"), std::string::npos);
}

TEST(ProgressTest, LongLabelAndHugeNumbersFitIn80Columns) {
  const std::string label(200, 'L');
  ProgressBar known(label, 9'000'000'000'000'000'000, false);
  const std::string a = known.Render(4'000'000'000'000'000'000, 0.001);
  EXPECT_LE(a.size(), 80u) << a;
  EXPECT_NE(a.find("4000000000000000000/9000000000000000000"), std::string::npos) << a;
  ProgressBar unknown(label, -1, false);
  const std::string b = unknown.Render(123456, 7);
  EXPECT_LE(b.size(), 80u) << b;
  EXPECT_NE(b.find("123456 done"), std::string::npos) << b;
  EXPECT_NE(b.find("..."), std::string::npos) << b;
  ProgressBar normal(std::string(60, 'n'), 1000, false);
  const std::string c = normal.Render(500, 10);
  EXPECT_LE(c.size(), 80u) << c;
  EXPECT_NE(c.find("500/1000"), std::string::npos) << c;
  EXPECT_NE(c.find('['), std::string::npos) << c;
}

TEST(ProgressTest, TruncatesUtf8LabelOnCharacterBoundary) {
  std::string label;
  for (int i = 0; i < 60; ++i) label += "\xC3\xA9";  // é, two bytes each
  ProgressBar bar(label, 100, false);
  const std::string line = bar.Render(1, 1);
  EXPECT_LE(line.size(), 80u);
  const std::size_t dots = line.find("...");
  ASSERT_NE(dots, std::string::npos) << line;
  EXPECT_EQ(dots % 2, 0u);  // whole é characters kept
}

TEST(ProgressTest, DisabledWritesNothing) {
  TmpFile out;
  ASSERT_NE(out.get(), nullptr);
  {
    ProgressBar bar("plate read", 3, false, out.get());
    for (int i = 0; i <= 3; ++i) bar.Update(i);
    bar.Finish();
  }
  {
    ProgressBar bar("plate read", -1, false, out.get());
    bar.Update(1);
  }  // destructor finishes
  EXPECT_EQ(Contents(out.get()), "");
}

TEST(ProgressTest, EnabledDrawsFinalCountAndClears) {
  TmpFile out;
  ASSERT_NE(out.get(), nullptr);
  ProgressBar bar("plate read", 100, true, out.get());
  for (int i = 0; i <= 100; ++i) bar.Update(i);
  const std::string drawn = Contents(out.get());
  EXPECT_EQ(drawn.front(), '\r');
  EXPECT_NE(drawn.find("100/100"), std::string::npos) << drawn;
  EXPECT_NE(drawn.find("100%"), std::string::npos) << drawn;
  // Throttled: 101 updates in a few microseconds draw the first and the last, not all of them.
  EXPECT_LT(std::count(drawn.begin(), drawn.end(), '\r'), 10);

  bar.Finish();
  const std::string all = Contents(out.get());
  ASSERT_GT(all.size(), drawn.size());
  const std::string clear = all.substr(drawn.size());
  ASSERT_GE(clear.size(), 2u);
  EXPECT_EQ(clear.front(), '\r');
  EXPECT_EQ(clear.back(), '\r');
  EXPECT_EQ(clear.find_first_not_of(' ', 1), clear.size() - 1) << "only spaces between the \\r";
  // As wide as the last line drawn, so it erases all of it.
  const std::size_t last_line = drawn.size() - drawn.rfind('\r') - 1;
  EXPECT_EQ(clear.size() - 2, last_line);

  // Clears once: Finish again, Update after Finish and the destructor add nothing.
  bar.Finish();
  bar.Update(100);
  EXPECT_EQ(Contents(out.get()), all);
}

TEST(ProgressTest, DestructorClearsLine) {
  TmpFile out;
  ASSERT_NE(out.get(), nullptr);
  {
    ProgressBar bar("scan", -1, true, out.get());
    bar.Update(7);
  }
  const std::string all = Contents(out.get());
  EXPECT_NE(all.find("7 done"), std::string::npos) << all;
  EXPECT_EQ(all.back(), '\r');
}

TEST(ProgressTest, ShorterLineIsPaddedOverLongerOne) {
  TmpFile out;
  ASSERT_NE(out.get(), nullptr);
  ProgressBar bar(std::string(20, 'a'), 10, true, out.get());
  bar.Update(1);
  const std::size_t first_width = Contents(out.get()).size() - 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past the redraw throttle
  bar.SetTotal(-1);  // the counter line is shorter than the bar line
  bar.Update(2);
  const std::string all = Contents(out.get());
  const std::string second = all.substr(all.rfind('\r') + 1);
  EXPECT_EQ(second.size(), first_width) << '"' << second << '"';
  EXPECT_NE(second.find("2 done"), std::string::npos);
}

TEST(ProgressTest, StderrIsTerminalDoesNotThrow) {
  // Under ctest stderr is a pipe or file; all we can check is that the query works.
  const bool tty = ProgressBar::StderrIsTerminal();
  EXPECT_TRUE(tty || !tty);
}

}  // namespace
}  // namespace portcullis::cli
