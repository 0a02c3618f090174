// check-host against fake /etc, /proc and /sys trees: a locked-down host passes every check, and
// each way of not being locked down fails the one check it concerns.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "cli_runner.h"
#include "lane/host_check.h"

namespace portcullis::lane {
namespace {

using portcullis::testing::WriteBytes;

class HostCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = portcullis::testing::MakeTempDir();
    ASSERT_FALSE(root_.empty());
    for (const char* d : {"/etc", "/etc/modprobe.d", "/proc", "/proc/sys", "/proc/sys/kernel",
                          "/sys", "/sys/block", "/sys/block/sda", "/sys/block/sdb",
                          "/sys/block/nvme0n1", "/sys/module", "/sys/module/ext4"}) {
      ASSERT_EQ(::mkdir((root_ + d).c_str(), 0755), 0) << d;
    }
    Write("/etc/modprobe.d/portcullis-usb-storage.conf",
          "# written by lane-host-lockdown.sh\ninstall usb-storage /bin/false\n"
          "install uas /bin/false\n");
    Write("/etc/modprobe.d/other.conf", "options snd foo=1\n");
    Write("/proc/modules", "ext4 1 0 - Live 0x0\nnvme 2 0 - Live 0x0\n");
    Write("/proc/sys/kernel/core_pattern", "|/bin/false\n");
    Write("/sys/block/sda/removable", "0\n");
    Write("/sys/block/sdb/removable", "1\n");  // a card reader, nothing mounted from it
    Write("/sys/block/nvme0n1/removable", "0\n");
    Write("/proc/mounts",
          "/dev/nvme0n1p2 / ext4 rw 0 0\nproc /proc proc rw 0 0\n"
          "/dev/sda1 /var/lib/portcullis-lane ext4 rw 0 0\n");
  }
  void Write(const std::string& path, const std::string& text) {
    ASSERT_TRUE(WriteBytes(root_ + path, text)) << path;
  }
  HostCheckReport Check(const std::string& data_dir = "/var/lib/portcullis-lane/data") {
    HostCheckOptions options;
    options.root = root_;
    options.data_dir = data_dir;
    HostCheckReport report;
    EXPECT_TRUE(CheckHostLockdown(options, &report).ok());
    return report;
  }
  static const HostCheckItem* Find(const HostCheckReport& r, const std::string& name) {
    for (const HostCheckItem& c : r.checks) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }
  // Exactly the named check fails.
  void ExpectOnlyFailure(const HostCheckReport& r, const std::string& name) {
    EXPECT_FALSE(r.locked_down);
    for (const HostCheckItem& c : r.checks) {
      EXPECT_EQ(c.ok, c.name != name) << c.name << ": " << c.detail;
    }
    ASSERT_NE(Find(r, name), nullptr) << name;
  }

  std::string root_;
};

TEST_F(HostCheckTest, LockedDownHostPassesEveryCheck) {
  const HostCheckReport r = Check();
  EXPECT_TRUE(r.locked_down);
  ASSERT_EQ(r.checks.size(), 5U);
  for (const HostCheckItem& c : r.checks) EXPECT_TRUE(c.ok) << c.name << ": " << c.detail;
}

TEST_F(HostCheckTest, BlacklistLinesAlsoCountAndBothModulesAreNeeded) {
  Write("/etc/modprobe.d/portcullis-usb-storage.conf", "blacklist usb_storage\nblacklist uas\n");
  EXPECT_TRUE(Check().locked_down);
  Write("/etc/modprobe.d/portcullis-usb-storage.conf", "blacklist usb-storage\n");
  ExpectOnlyFailure(Check(), "usb_storage_blocked");
  EXPECT_NE(Find(Check(), "usb_storage_blocked")->detail.find("uas"), std::string::npos);
  // A file not ending in .conf is ignored by modprobe, so by the check too.
  ASSERT_EQ(::unlink((root_ + "/etc/modprobe.d/portcullis-usb-storage.conf").c_str()), 0);
  Write("/etc/modprobe.d/usb.conf.disabled",
        "install usb-storage /bin/false\ninstall uas /bin/false\n");
  ExpectOnlyFailure(Check(), "usb_storage_blocked");
}

TEST_F(HostCheckTest, LoadedOrBuiltInModuleFails) {
  Write("/proc/modules", "ext4 1 0 - Live 0x0\nusb_storage 77824 1 uas, Live 0x0\n");
  ExpectOnlyFailure(Check(), "usb_storage_unloaded");
  Write("/proc/modules", "ext4 1 0 - Live 0x0\n");
  ASSERT_EQ(::mkdir((root_ + "/sys/module/uas").c_str(), 0755), 0);
  ExpectOnlyFailure(Check(), "usb_storage_unloaded");
}

TEST_F(HostCheckTest, MountedRemovableMediaFails) {
  Write("/proc/mounts",
        "/dev/nvme0n1p2 / ext4 rw 0 0\n/dev/sda1 /var/lib/portcullis-lane ext4 rw 0 0\n"
        "/dev/sdb1 /media/stick vfat rw 0 0\n");
  const HostCheckReport r = Check();
  ExpectOnlyFailure(r, "no_removable_mounts");
  EXPECT_NE(Find(r, "no_removable_mounts")->detail.find("/dev/sdb1"), std::string::npos);
}

TEST_F(HostCheckTest, UsbDiskFoundThroughItsSysfsLink) {
  // A USB hard disk reports removable=0; its /sys/block link goes through a usb bus.
  ASSERT_EQ(::mkdir((root_ + "/sys/devices").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((root_ + "/sys/devices/usb2").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((root_ + "/sys/devices/usb2/sdc").c_str(), 0755), 0);
  Write("/sys/devices/usb2/sdc/removable", "0\n");
  ASSERT_EQ(::symlink("../devices/usb2/sdc", (root_ + "/sys/block/sdc").c_str()), 0);
  Write("/proc/mounts",
        "/dev/nvme0n1p2 / ext4 rw 0 0\n/dev/sda1 /var/lib/portcullis-lane ext4 rw 0 0\n"
        "/dev/sdc1 /mnt/disk ext4 rw 0 0\n");
  ExpectOnlyFailure(Check(), "no_removable_mounts");
}

TEST_F(HostCheckTest, CoreDumpsEnabledFails) {
  Write("/proc/sys/kernel/core_pattern", "core\n");
  ExpectOnlyFailure(Check(), "core_dumps_disabled");
  Write("/proc/sys/kernel/core_pattern", "|/usr/lib/systemd/systemd-coredump %P\n");
  ExpectOnlyFailure(Check(), "core_dumps_disabled");
}

TEST_F(HostCheckTest, DataDirOnRemovableMediaFails) {
  Write("/proc/mounts",
        "/dev/nvme0n1p2 / ext4 rw 0 0\n/dev/sdb1 /var/lib/portcullis-lane vfat rw 0 0\n");
  const HostCheckReport r = Check();
  EXPECT_FALSE(r.locked_down);
  EXPECT_FALSE(Find(r, "data_dir_fixed")->ok);
  EXPECT_FALSE(Find(r, "no_removable_mounts")->ok);
  // Without a data dir the check is not made.
  EXPECT_EQ(Find(Check(""), "data_dir_fixed"), nullptr);
}

TEST_F(HostCheckTest, UnreadableProcFailsClosed) {
  ASSERT_EQ(::unlink((root_ + "/proc/modules").c_str()), 0);
  ExpectOnlyFailure(Check(), "usb_storage_unloaded");
  HostCheckOptions options;
  options.root = root_ + "/missing";
  HostCheckReport report;
  EXPECT_EQ(CheckHostLockdown(options, &report).code(), Status::Code::kInvalidArgument);
}

// The real binary: exit 0 when locked down, 22 otherwise; --json is one JSON object.
TEST_F(HostCheckTest, CliExitCodesAndJson) {
  auto r = portcullis::testing::RunCli({"lane", "check-host", "--root", root_, "--data-dir",
                                        "/var/lib/portcullis-lane/d", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = portcullis::testing::JsonLines(r);
  ASSERT_EQ(lines.size(), 1U) << r;
  EXPECT_EQ(lines[0]["locked_down"], true);
  EXPECT_EQ(lines[0]["checks"].size(), 5U);
  EXPECT_EQ(lines[0]["checks"][0]["name"], "usb_storage_blocked");

  Write("/proc/sys/kernel/core_pattern", "core\n");
  r = portcullis::testing::RunCli({"lane", "check-host", "--root", root_, "--json"});
  EXPECT_EQ(r.exit_code, 22) << r;
  lines = portcullis::testing::JsonLines(r);
  ASSERT_EQ(lines.size(), 1U) << r;
  EXPECT_EQ(lines[0]["locked_down"], false);
  bool saw = false;
  for (const auto& c : lines[0]["checks"]) {
    if (c["name"] == "core_dumps_disabled") {
      saw = true;
      EXPECT_EQ(c["ok"], false);
    }
  }
  EXPECT_TRUE(saw);
  r = portcullis::testing::RunCli({"lane", "check-host", "--root", root_});
  EXPECT_EQ(r.exit_code, 22) << r;
  EXPECT_NE(r.out.find("core_dumps_disabled"), std::string::npos) << r;
  r = portcullis::testing::RunCli({"lane", "check-host", "--root", root_ + "/nope"});
  EXPECT_EQ(r.exit_code, 2) << r;
}

}  // namespace
}  // namespace portcullis::lane
