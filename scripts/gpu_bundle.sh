#!/usr/bin/env bash
# Run on the CPU machine before a GPU session: gathers what the GPU machine lacks into .gpu_bundle/ (git-ignored),
# for the device call to `carry`: Debian 12's .deb files of the libraries it may not have (SentencePiece for sure;
# nlohmann-json, xxhash, CLI11 and ICU in case; scripts/gpu_check.sh unpacks only those the machine lacks), and the
# prepared Bible corpus. Checks the bundle fits the carry limit (64 MiB).
#
#   scripts/gpu_bundle.sh            # then: device run with carry [".gpu_bundle"], command scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=.gpu_bundle
TERN=${TERN:-build/cli/tern}
LIMIT_MB=64
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
cp -p work/bible/bible.h5 "$BUNDLE/bible.h5"
(cd "$BUNDLE" && sha256sum debs/*.deb bible.h5 > SHA256SUMS)

size_kb=$(du -sk "$BUNDLE" | cut -f1)
echo "gpu_bundle: $BUNDLE holds $(ls "$BUNDLE/debs" | wc -l) packages and bible.h5, $((size_kb / 1024)) MiB"
if [ "$size_kb" -gt $((LIMIT_MB * 1024)) ]; then
  echo "gpu_bundle: $BUNDLE is over the ${LIMIT_MB} MiB carry limit" >&2
  exit 1
fi
