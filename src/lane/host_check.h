// `portcullis lane check-host`: is this lane computer locked down against removable media?
//
// The 2019 breach left on USB sticks; the OIG report's first recommendation was to disable USB
// mass storage on the lane devices. scripts/lane-host-lockdown.sh does that; this check says
// whether it is in force, reading only /etc, /proc and /sys (under a root prefix, so tests run
// it against fake trees):
//   usb_storage_blocked   /etc/modprobe.d/*.conf blacklists or disables usb-storage and uas
//   usb_storage_unloaded  neither module in /proc/modules nor built in (/sys/module/<name>)
//   no_removable_mounts   no mounted block device is removable or on USB (/sys/block, /proc/mounts)
//   core_dumps_disabled   /proc/sys/kernel/core_pattern pipes to /bin/false (or true)
//   data_dir_fixed        the agent's data dir is not on removable/USB media (given a data dir)
#pragma once

#include <string>
#include <vector>

#include "portcullis/status.h"

namespace portcullis::lane {

struct HostCheckOptions {
  std::string root = "/";  // prefix of /etc, /proc and /sys (tests: a fake tree)
  std::string data_dir;    // "" skips data_dir_fixed
};

struct HostCheckItem {
  std::string name;  // one of the names above
  bool ok = false;
  std::string detail;  // what was found, for a person
};

struct HostCheckReport {
  bool locked_down = false;  // every check ok
  std::vector<HostCheckItem> checks;
};

// Never fails for what it finds (that is the report); fails only when root is not a directory.
Status CheckHostLockdown(const HostCheckOptions& options, HostCheckReport* report);

}  // namespace portcullis::lane
