#!/usr/bin/env bash
# Corpus preparation and loading at scale: N copies of the Bible training text (N = 100: 3,019,200 pairs, 787 MB).
#   bench/prepare_scale.sh N [OLD_TERN]
# Reports `tern prepare` wall time, encoding lines/s and MB/s and peak RSS with 1 thread and with every core (and
# checks the two corpora are identical), then `tern train` (configs/bible.yaml, 80 steps, no validation) on it:
# startup time and resident memory before the first step, training tokens/s, the loader's rate. OLD_TERN, an older
# tern binary, trains on the same corpus for the before/after comparison (its peak RSS, its tokens/s), the two
# binaries alternating PAIRS times (default 3). SKIP_PREPARE=1 reuses the corpus of an earlier run.
# Run it on a quiet machine: it measures time. Work files go to work/scale_N (several GB for N = 100).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?usage: bench/prepare_scale.sh N [OLD_TERN]}
OLD=${2:-}
TERN=${TERN:-build/cli/tern}
BIBLE=work/bible
W=work/scale_$N
CORES=$(nproc)
[ -f "$BIBLE/train.en" ] || python3 scripts/bible_corpus.py --out "$BIBLE"
mkdir -p "$W"
for s in en es; do
  want=$(( $(stat -c %s "$BIBLE/train.$s") * N ))
  if [ ! -f "$W/train.$s" ] || [ "$(stat -c %s "$W/train.$s")" != "$want" ]; then
    : > "$W/train.$s"
    for _ in $(seq "$N"); do cat "$BIBLE/train.$s" >> "$W/train.$s"; done
  fi
done
MB=$(( ($(stat -c %s "$W/train.en") + $(stat -c %s "$W/train.es")) / 1000000 ))
echo "prepare_scale: N=$N, $(wc -l < "$W/train.en") pairs, $MB MB of text, $CORES cores, $(date -u +%FT%TZ)"

prepare() {  # threads -> the corpus path; prints one table row
  local t=$1 out="$W/c$1.h5" log="$W/prepare_t$1.log"
  /usr/bin/time -f "TIME %e %M" "$TERN" prepare --train-src "$W/train.en" --train-tgt "$W/train.es" \
    --valid-src "$BIBLE/valid.en" --valid-tgt "$BIBLE/valid.es" --vocab-size 8000 --threads "$t" \
    --out "$out" --overwrite > "$log" 2>&1
  local wall rss enc
  read -r wall rss < <(grep '^TIME' "$log" | cut -d' ' -f2-)
  enc=$(grep -o 'encoded .*' "$log")
  printf "prepare --threads %-2s wall %7.1f s  peak RSS %6.0f MiB  %s\n" "$t" "$wall" "$((rss / 1024))" "$enc"
}
if [ -z "${SKIP_PREPARE:-}" ]; then
  prepare 1
  prepare "$CORES"
  python3 - "$W/c1.h5" "$W/c$CORES.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
same = all(np.array_equal(a[n][()], b[n][()]) for n in names) and a.attrs["filter_stats"] == b.attrs["filter_stats"]
print(f"corpora of 1 and {sys.argv[2].split('/c')[-1][:-3]} threads: {'identical' if same else 'DIFFERENT'} ({len(names)} datasets)")
sys.exit(0 if same else 1)
PY
fi

train() {  # binary label -> one row; appends the 10-step rates of steps 21-80 to $W/rates_LABEL
  local bin=$1 label=$2 log="$W/train_$2.log"
  rm -rf "$W/run_$label"
  OMP_NUM_THREADS=$CORES /usr/bin/time -f "TIME %e %M" "$bin" train configs/bible.yaml \
    --set data.corpus="$W/c$CORES.h5" --set train.run_dir="$W/run_$label" --set train.max_steps=80 \
    --set train.valid_every=0 --set train.save_every=0 --set train.log_every=10 --no-progress > "$log" 2>&1
  local rss ready loader
  rss=$(grep '^TIME' "$log" | cut -d' ' -f3)
  ready=$(grep -o 'ready to train.*' "$log" || echo "ready to train: (not logged by this binary)")
  grep -E 'step ([3-8]0) ' "$log" | grep -o '[0-9]* tok/s' | cut -d' ' -f1 >> "$W/rates_$label"
  loader=$(grep -o 'data loader:.*' "$log" || echo "data loader: (not logged)")
  printf "train %-4s peak RSS %6.0f MiB  steps 21-80: %s tok/s\n     %s\n     %s\n" "$label" "$((rss / 1024))" \
    "$(tail -6 "$W/rates_$label" | paste -sd' ')" "$ready" "$loader"
}
median() { sort -n "$1" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
rm -f "$W/rates_new" "$W/rates_old"
# With OLD_TERN the two binaries alternate (PAIRS times, default 3) so that a change in the machine's speed falls on
# both; the summary compares the medians of all their 10-step rates.
for _ in $(seq "${PAIRS:-3}"); do
  train "$TERN" new
  [ -z "$OLD" ] || train "$OLD" old
done
if [ -n "$OLD" ]; then
  n=$(median "$W/rates_new") o=$(median "$W/rates_old")
  echo "training tokens/s, median of $(wc -l < "$W/rates_new") 10-step rates each: new $n, old $o ($(python3 -c "print(f'{$n / $o:.3f}')")x)"
fi
