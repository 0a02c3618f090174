#include "host_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "portcullis/env.h"

namespace portcullis::lane {
namespace {

constexpr std::size_t kMaxFileBytes = 1 << 20;

std::string Join(const std::string& root, const std::string& path) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r == "/" ? path : r + path;
}

bool ReadSmall(const std::string& path, std::string* text) {
  return Env::Default()->ReadFile(path, kMaxFileBytes, text).ok();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// modprobe treats '-' and '_' in module names alike.
std::string ModuleName(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

const std::vector<std::string>& UsbModules() {
  static const std::vector<std::string> kModules = {"usb_storage", "uas"};
  return kModules;
}

HostCheckItem CheckBlocked(const std::string& root) {
  HostCheckItem item{"usb_storage_blocked", false, ""};
  const std::string dir = Join(root, "/etc/modprobe.d");
  std::vector<std::string> names;
  std::set<std::string> blocked;
  if (Env::Default()->ListDirectory(dir, &names).ok()) {
    for (const std::string& name : names) {
      if (name.size() < 5 || name.substr(name.size() - 5) != ".conf") continue;
      std::string text;
      if (!ReadSmall(dir + "/" + name, &text)) continue;
      std::istringstream lines(text);
      std::string line;
      while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string verb;
        std::string module;
        std::string command;
        words >> verb >> module >> command;
        if (verb == "blacklist" && !module.empty()) blocked.insert(ModuleName(module));
        // "install usb-storage /bin/false": even an explicit modprobe cannot load it (a
        // blacklist alone stops only automatic loading).
        if (verb == "install" && (command == "/bin/false" || command == "/bin/true" ||
                                  command == "/usr/bin/false" || command == "/usr/bin/true")) {
          blocked.insert(ModuleName(module));
        }
      }
    }
  }
  std::vector<std::string> missing;
  for (const std::string& m : UsbModules()) {
    if (blocked.count(m) == 0) missing.push_back(m);
  }
  item.ok = missing.empty();
  if (item.ok) {
    item.detail = "usb_storage and uas are blocked in /etc/modprobe.d";
  } else {
    item.detail = "not blocked in /etc/modprobe.d:";
    for (const std::string& m : missing) item.detail += " " + m;
  }
  return item;
}

HostCheckItem CheckUnloaded(const std::string& root) {
  HostCheckItem item{"usb_storage_unloaded", false, ""};
  std::string text;
  if (!ReadSmall(Join(root, "/proc/modules"), &text)) {
    item.detail = "cannot read /proc/modules";
    return item;
  }
  std::set<std::string> loaded;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string name;
    words >> name;
    loaded.insert(ModuleName(name));
  }
  std::string found;
  for (const std::string& m : UsbModules()) {
    if (loaded.count(m) != 0) {
      found += " " + m + " (loaded)";
    } else if (Env::Default()->KindOf(Join(root, "/sys/module/" + m)) == FileKind::kDirectory) {
      found += " " + m + " (built into the kernel)";
    }
  }
  item.ok = found.empty();
  item.detail = item.ok ? "usb_storage and uas are not loaded" : "present:" + found;
  return item;
}

// Block devices that are removable or hang off a USB bus, by name ("sdb").
std::set<std::string> RemovableDisks(const std::string& root) {
  std::set<std::string> disks;
  const std::string dir = Join(root, "/sys/block");
  std::vector<std::string> names;
  if (!Env::Default()->ListDirectory(dir, &names).ok()) return disks;
  for (const std::string& name : names) {
    std::string removable;
    if (ReadSmall(dir + "/" + name + "/removable", &removable) && Trim(removable) == "1") {
      disks.insert(name);
      continue;
    }
    // /sys/block/sdb -> ../devices/pci0000:00/.../usb2/2-1/.../block/sdb
    char target[4096];
    const ssize_t n = ::readlink((dir + "/" + name).c_str(), target, sizeof target - 1);
    if (n > 0 &&
        std::string(target, static_cast<std::size_t>(n)).find("/usb") != std::string::npos) {
      disks.insert(name);
    }
  }
  return disks;
}

// "/dev/sdb1" -> "sdb" when sdb is one of disks (the longest disk name that prefixes it).
std::string DiskOf(const std::string& device, const std::set<std::string>& all_disks) {
  if (device.rfind("/dev/", 0) != 0) return "";
  const std::string name = device.substr(5);
  std::string best;
  for (const std::string& disk : all_disks) {
    if (name.rfind(disk, 0) == 0 && disk.size() > best.size()) best = disk;
  }
  return best;
}

struct Mount {
  std::string device, point;
};

std::vector<Mount> Mounts(const std::string& root, bool* readable) {
  std::vector<Mount> mounts;
  std::string text;
  *readable = ReadSmall(Join(root, "/proc/mounts"), &text);
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    Mount m;
    words >> m.device >> m.point;
    if (!m.device.empty() && !m.point.empty()) mounts.push_back(m);
  }
  return mounts;
}

std::set<std::string> AllDisks(const std::string& root) {
  std::vector<std::string> names;
  Env::Default()->ListDirectory(Join(root, "/sys/block"), &names);
  return {names.begin(), names.end()};
}

HostCheckItem CheckNoRemovableMounts(const std::string& root) {
  HostCheckItem item{"no_removable_mounts", false, ""};
  bool readable = false;
  const std::vector<Mount> mounts = Mounts(root, &readable);
  if (!readable) {
    item.detail = "cannot read /proc/mounts";
    return item;
  }
  const std::set<std::string> removable = RemovableDisks(root);
  const std::set<std::string> all = AllDisks(root);
  std::string found;
  for (const Mount& m : mounts) {
    const std::string disk = DiskOf(m.device, all);
    if (!disk.empty() && removable.count(disk) != 0) found += " " + m.device + " on " + m.point;
  }
  item.ok = found.empty();
  item.detail =
      item.ok ? "no removable or USB block device is mounted" : "removable media mounted:" + found;
  return item;
}

HostCheckItem CheckCoreDumps(const std::string& root) {
  HostCheckItem item{"core_dumps_disabled", false, ""};
  std::string pattern;
  if (!ReadSmall(Join(root, "/proc/sys/kernel/core_pattern"), &pattern)) {
    item.detail = "cannot read /proc/sys/kernel/core_pattern";
    return item;
  }
  pattern = Trim(pattern);
  item.ok = pattern == "|/bin/false" || pattern == "|/usr/bin/false" || pattern == "|/bin/true" ||
            pattern == "|/usr/bin/true";
  item.detail = "kernel.core_pattern is '" + pattern + "'" +
                (item.ok ? "" : " (set it to |/bin/false: scripts/lane-host-lockdown.sh)");
  return item;
}

HostCheckItem CheckDataDir(const std::string& root, const std::string& data_dir) {
  HostCheckItem item{"data_dir_fixed", false, ""};
  bool readable = false;
  const std::vector<Mount> mounts = Mounts(root, &readable);
  if (!readable) {
    item.detail = "cannot read /proc/mounts";
    return item;
  }
  // The mount that holds the data dir: the longest mount point that prefixes its path.
  const Mount* holder = nullptr;
  for (const Mount& m : mounts) {
    const bool prefix =
        m.point == "/" || data_dir == m.point || data_dir.rfind(m.point + "/", 0) == 0;
    if (prefix && (holder == nullptr || m.point.size() >= holder->point.size())) holder = &m;
  }
  if (holder == nullptr) {
    item.detail = "no mount holds " + data_dir;
    return item;
  }
  const std::string disk = DiskOf(holder->device, AllDisks(root));
  const bool removable = !disk.empty() && RemovableDisks(root).count(disk) != 0;
  item.ok = !removable;
  item.detail = data_dir + " is on " + holder->device + " mounted at " + holder->point +
                (removable ? " (removable or USB media)" : "");
  return item;
}

}  // namespace

Status CheckHostLockdown(const HostCheckOptions& options, HostCheckReport* report) {
  if (Env::Default()->KindOf(options.root) != FileKind::kDirectory) {
    return Status::InvalidArgument("root '" + options.root + "' is not a directory");
  }
  HostCheckReport r;
  r.checks.push_back(CheckBlocked(options.root));
  r.checks.push_back(CheckUnloaded(options.root));
  r.checks.push_back(CheckNoRemovableMounts(options.root));
  r.checks.push_back(CheckCoreDumps(options.root));
  if (!options.data_dir.empty()) r.checks.push_back(CheckDataDir(options.root, options.data_dir));
  r.locked_down =
      std::all_of(r.checks.begin(), r.checks.end(), [](const HostCheckItem& c) { return c.ok; });
  *report = std::move(r);
  return Status::Ok();
}

}  // namespace portcullis::lane
