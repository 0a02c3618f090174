#!/usr/bin/env bash
# Creates a private SoftHSM2 token for the tests: its own softhsm2.conf and token directory under
# DIR (nothing touches /etc/softhsm or /var/lib/softhsm), wiped and re-created on every run.
#   scripts/softhsm_token.sh DIR LABEL PIN SO_PIN
# Then: SOFTHSM2_CONF=DIR/softhsm2.conf, and open the provider as pkcs11:LABEL with PIN.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 DIR LABEL PIN SO_PIN" >&2
  exit 2
fi
DIR="$1" LABEL="$2" PIN="$3" SO_PIN="$4"
if ! command -v softhsm2-util >/dev/null 2>&1; then
  echo "softhsm_token: softhsm2-util not found; run scripts/install.sh (Debian package softhsm2)" >&2
  exit 1
fi
rm -rf "$DIR"
mkdir -p "$DIR/tokens"
cat >"$DIR/softhsm2.conf" <<CONF
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$DIR/softhsm2.conf"
softhsm2-util --init-token --free --label "$LABEL" --pin "$PIN" --so-pin "$SO_PIN" >/dev/null
softhsm2-util --show-slots | grep -q "Label:.*$LABEL" || {
  echo "softhsm_token: token '$LABEL' was not created" >&2
  exit 1
}
echo "softhsm_token: token '$LABEL' ready (SOFTHSM2_CONF=$SOFTHSM2_CONF)"
