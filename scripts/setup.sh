#!/usr/bin/env bash
# Idempotent setup on Debian 12: system packages, the LibTorch wheel and test tools from PyPI, then configure and
# build tern into build/ (ccache + precompiled headers make rebuilds fast). Safe to run again at any time.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config git
  libopenmpi-dev openmpi-bin libhdf5-dev libyaml-cpp-dev libsentencepiece-dev sentencepiece libxxhash-dev libicu-dev zlib1g-dev
  nlohmann-json3-dev libcli11-dev libgtest-dev clang clang-format clang-tidy libclang-rt-14-dev diatheke sword-text-kjv sword-text-sparv
  sword-text-web slurmctld slurmd slurm-client)
# slurmctld, slurmd, slurm-client: the slurm_job test starts its own one-node cluster (nothing is configured system-wide).
# Headless Chromium for the report test, without its recommended desktop packages.
APT_NO_RECOMMENDS=(chromium)
PY_PACKAGES=(torch==2.11.0 sacrebleu==2.6.0 h5py numpy sentencepiece tensorboard==2.21.0 wcwidth==0.7.0)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
lean=()
for p in "${APT_NO_RECOMMENDS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || lean+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]} ${lean[*]}"
  $SUDO apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  [ ${#lean[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi

if ! python3 - <<'PY' 2>/dev/null
import importlib.metadata as m
assert m.version("torch").startswith("2.11.0") and m.version("sacrebleu") == "2.6.0"
import h5py, numpy, sentencepiece, tensorboard, wcwidth
PY
then
  echo "setup: installing Python packages: ${PY_PACKAGES[*]} (the torch wheel is large; pip caches it)"
  python3 -m pip install -q "${PY_PACKAGES[@]}"
fi

# KenLM's Python module (tests load tern's pruned ARPA files with it). Built from source: its CMakeLists predates
# CMake 4, which pip's isolated build environment brings, hence the policy floor.
if ! python3 -c "import kenlm" 2>/dev/null; then
  echo "setup: building the kenlm Python module (about 2 minutes)"
  CMAKE_POLICY_VERSION_MINIMUM=3.5 python3 -m pip install -q kenlm==0.2.0
fi

BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${TERN_CMAKE_ARGS:-}
fi
start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$(nproc)"
echo "setup: build ready in $BUILD_DIR ($(( $(date +%s) - start )) s build step)"
