#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to the main jobs on built-in demo data: installs every
# dependency, fetches and prepares the models, builds, then
#   1. renders synthetic vehicle scenes and reads their plates;
#   2. verifies faces on the document-style chips Debian's libdlib19.1 ships (same person, then not);
#   3. keeps the plate images in a demo vault (encrypted, audited), reads one back, and verifies the
#      audit log with its public key alone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/install.sh"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja >/dev/null
cmake --build "$ROOT/build" -j "$(nproc)" --target portcullis
P="$ROOT/build/src/cli/portcullis"
DEMO="$ROOT/demo-out"

echo "== plates: render the demo scenes and read them"
"$P" plate demo --out "$DEMO"
"$P" plate read "$DEMO"

echo "== faces: verify (exit 17 means 'not the same person', which is the expected answer below)"
JOHNS=/usr/share/doc/libdlib19.1/examples/johns
"$P" face verify "$JOHNS/John_Salley/000179_02159509.jpg" "$JOHNS/John_Salley/000183_02159543.jpg"
"$P" face verify "$JOHNS/John_Salley/000179_02159509.jpg" "$JOHNS/John_Simm/000288_00470387.jpg" ||
  [ $? -eq 17 ]

echo "== vault: keep the plate images encrypted, read one back, verify the audit log"
# A development keyring; production uses --keys pkcs11:LABEL and the token's PIN.
export PORTCULLIS_VAULT_SECRET="${PORTCULLIS_VAULT_SECRET:-portcullis demo passphrase (development only)}"
VAULT="$DEMO/vault.db"
rm -rf "$VAULT" "$VAULT"-* "$VAULT".*  # a fresh demo vault on every run
who=(--store "sqlite:$VAULT" --as demo:lane-1 --role lane_device --purpose "built-in demo")
"$P" vault init "${who[@]}"
"$P" vault put "${who[@]}" --type plate_read --subject vehicle --content-type image/png \
  --label lane=demo "$DEMO"/*.png
"$P" vault list "${who[@]}"
first="$("$P" vault list "${who[@]}" --json --limit 1 | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')"
"$P" vault get "${who[@]}" "$first" --out "$DEMO/read-back.png"
"$P" vault purge "${who[@]}" --dry-run
"$P" audit verify --log "$VAULT.audit" --key "$VAULT.audit-keys/signing.pub"
