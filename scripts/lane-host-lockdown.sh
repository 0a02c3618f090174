#!/bin/sh
# Locks a lane computer down against removable media and core dumps (docs/lane-agent.md).
#
# The 2019 breach: a vendor's technician copied traveller images off a lane device onto USB
# drives. The OIG report's first recommendation was to disable USB mass storage on those
# devices. This script does that, and turns core dumps off system-wide (a crash must not write
# a memory image full of frames to disk). It is idempotent: running it twice changes nothing
# the second time.
#
#   sudo scripts/lane-host-lockdown.sh            apply
#   scripts/lane-host-lockdown.sh --check [ARGS]  only check (portcullis lane check-host ARGS)
#
# Applying writes:
#   /etc/modprobe.d/portcullis-usb-storage.conf   install usb-storage /bin/false; same for uas
#   /etc/sysctl.d/90-portcullis-core.conf         kernel.core_pattern = |/bin/false
# and unloads usb-storage and uas when they are loaded (a mounted stick must be unmounted first:
# the script refuses rather than yank it). Reboot-proof: both files are read at every boot.
# Environment: PORTCULLIS (the portcullis binary, default: portcullis on PATH).
set -eu

PORTCULLIS="${PORTCULLIS:-portcullis}"
MODPROBE_CONF=/etc/modprobe.d/portcullis-usb-storage.conf
SYSCTL_CONF=/etc/sysctl.d/90-portcullis-core.conf

if [ "${1:-}" = "--check" ]; then
  shift
  exec "$PORTCULLIS" lane check-host "$@"
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "lane-host-lockdown: must run as root (or use --check)" >&2
  exit 2
fi

write_if_different() {  # path content
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
    printf '%s\n' "$2" > "$1.tmp.$$"
    chmod 0644 "$1.tmp.$$"
    mv "$1.tmp.$$" "$1"
    echo "wrote $1"
  else
    echo "unchanged $1"
  fi
}

write_if_different "$MODPROBE_CONF" "# portcullis: no USB mass storage on a lane computer (docs/lane-agent.md)
install usb-storage /bin/false
install uas /bin/false"

for module in uas usb_storage; do
  if grep -q "^$module " /proc/modules 2>/dev/null; then
    if ! modprobe -r "$module"; then
      echo "lane-host-lockdown: cannot unload $module (a device still mounted?)" >&2
      exit 1
    fi
    echo "unloaded $module"
  fi
done

write_if_different "$SYSCTL_CONF" "# portcullis: no core dumps on a lane computer (docs/lane-agent.md)
kernel.core_pattern = |/bin/false"
sysctl -q -p "$SYSCTL_CONF"

echo "done; check with: $0 --check"
