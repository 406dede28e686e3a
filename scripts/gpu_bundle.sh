#!/usr/bin/env bash
# Run on the CPU machine before a GPU session: gathers what the GPU machine lacks into .gpu_bundle/ (git-ignored),
# for the device call to `carry`: Debian 12's .deb files of the libraries it may not have (SentencePiece for sure;
# nlohmann-json, xxhash, CLI11 and ICU in case; scripts/gpu_check.sh unpacks only those the machine lacks), the
# prepared Bible corpus with its raw test references, and the wheels of OpenNMT-py 3.5.1 for its side-by-side stage
# (opennmt-py and configargparse, and pyonmttok built for the GPU machine's Python, GPU_PYTHON, 3.12 on its Ubuntu
# 24.04; torch is there already). Checks the bundle fits the carry limit (64 MiB).
#
#   scripts/gpu_bundle.sh            # then: device run with carry [".gpu_bundle"], command scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=.gpu_bundle
TERN=${TERN:-build/cli/tern}
LIMIT_MB=64
GPU_PYTHON=${GPU_PYTHON:-3.12}
PACKAGES=(libsentencepiece0 libsentencepiece-dev nlohmann-json3-dev libxxhash0 libxxhash-dev libcli11-dev libicu72
  libicu-dev)

mkdir -p "$BUNDLE/debs"
missing=()
for p in "${PACKAGES[@]}"; do
  compgen -G "$BUNDLE/debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "gpu_bundle: apt-get download ${missing[*]}"
  (cd "$BUNDLE/debs" && apt-get download "${missing[@]}" >/dev/null)
fi

# The Bible corpus the check trains on (format 2), prepared here with the default job's settings when absent.
if [ ! -f work/bible/bible.h5 ]; then
  [ -x "$TERN" ] || { echo "gpu_bundle: $TERN is not built: run scripts/setup.sh first" >&2; exit 1; }
  [ -f work/bible/train.en ] || python3 scripts/bible_corpus.py --out work/bible
  "$TERN" prepare --train-src work/bible/train.en --train-tgt work/bible/train.es \
    --valid-src work/bible/valid.en --valid-tgt work/bible/valid.es --test-src work/bible/test.en \
    --test-tgt work/bible/test.es --vocab-size 4000 --max-tokens 100 --long-policy drop --out work/bible/bible.h5
fi
cp -p work/bible/bible.h5 work/bible/test.es "$BUNDLE/"

# OpenNMT-py for bench/onmt_compare.sh there (ONMT_WHEELS): the pure-Python wheels, and for GPU_PYTHON pyonmttok (a
# compiled module OpenNMT-py imports at start-up) and sentencepiece (the comparison exports the corpus's pieces).
mkdir -p "$BUNDLE/wheels"
if ! compgen -G "$BUNDLE/wheels/pyonmttok-*-cp${GPU_PYTHON/./}-*.whl" >/dev/null; then
  echo "gpu_bundle: pip download opennmt-py 3.5.1, configargparse, pyonmttok and sentencepiece (Python $GPU_PYTHON)"
  python3 -m pip download -q --no-deps -d "$BUNDLE/wheels" opennmt-py==3.5.1 configargparse==1.9.0
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$GPU_PYTHON" \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d "$BUNDLE/wheels" pyonmttok==1.38.1 sentencepiece==0.2.3
fi
(cd "$BUNDLE" && sha256sum debs/*.deb wheels/*.whl bible.h5 test.es > SHA256SUMS)

size_kb=$(du -sk "$BUNDLE" | cut -f1)
echo "gpu_bundle: $BUNDLE holds $(ls "$BUNDLE/debs" | wc -l) packages, $(ls "$BUNDLE/wheels" | wc -l) wheels and the" \
  "Bible corpus, $((size_kb / 1024)) MiB"
if [ "$size_kb" -gt $((LIMIT_MB * 1024)) ]; then
  echo "gpu_bundle: $BUNDLE is over the ${LIMIT_MB} MiB carry limit" >&2
  exit 1
fi
