#!/usr/bin/env bash
# Guided alignment measured on the Bible: eflomal (PyPI `eflomal`) aligns every verse pair (training, valid and test
# together, lowercased, punctuation stripped: the same words as the raw lines), symmetrized by grow-diag-final-and
# (bench/alignments.py); the training links go into a corpus of the default job's pieces (tern prepare
# --train-align), and bench/ablation.sh trains configs/bible.yaml without and with train.guided_alignment_weight,
# best.tern chosen by validation loss (greedy validation BLEU over the 422 valid verses is a noisy choice here: it
# preferred step 600 to step 800 for weights 0.5 and 1, whose chrF2 rose by 3).
# Then each model's attention aligns the test references (translate --score-target --alignment) and is scored
# against eflomal's test links (precision, recall, F1, AER; eflomal as the reference, not a human one).
#   pip install eflomal; bench/guided_alignment.sh            (WEIGHT=0.5, STEPS=800: ~15 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
WORK=work/bible
WEIGHT=${WEIGHT:-0.5}
OUT=${OUT:-runs/guided-alignment-$(date +%Y%m%d-%H%M%S)}
command -v eflomal-align > /dev/null || { echo "bench/guided_alignment.sh: needs eflomal (pip install eflomal)" >&2; exit 3; }
[ -f "$WORK/train.en" ] || { echo "bench/guided_alignment.sh: $WORK is missing: run scripts/run_bible.sh first" >&2; exit 4; }
[ ! -e "$OUT" ] || { echo "bench/guided_alignment.sh: $OUT exists: give another OUT" >&2; exit 7; }
mkdir -p "$OUT/align"
A=$OUT/align
for l in en es; do
  cat "$WORK/train.$l" "$WORK/valid.$l" "$WORK/test.$l" > "$A/all.$l"
  python3 bench/alignments.py words "$A/all.$l" "$A/words.$l"
done
eflomal-align -s "$A/words.en" -t "$A/words.es" -f "$A/fwd" -r "$A/rev" 2> "$A/eflomal.log"
python3 bench/alignments.py gdfa "$A/fwd" "$A/rev" "$A/gdfa"
train=$(wc -l < "$WORK/train.en") test=$(wc -l < "$WORK/test.en")
head -n "$train" "$A/gdfa" > "$A/train.al"
tail -n "$test" "$A/gdfa" > "$A/test.al"
"$TERN" prepare --train-src "$WORK/train.en" --train-tgt "$WORK/train.es" --train-align "$A/train.al" \
  --valid-src "$WORK/valid.en" --valid-tgt "$WORK/valid.es" --test-src "$WORK/test.en" --test-tgt "$WORK/test.es" \
  --vocab-size 4000 --max-tokens 100 --long-policy drop --out "$A/bible_align.h5" 2> "$A/prepare.log"
CORPUS="$A/bible_align.h5" OUT="$OUT/runs" TERN="$TERN" bench/ablation.sh \
  base "train.valid_metric=loss" guided "train.valid_metric=loss train.guided_alignment_weight=$WEIGHT"
for run in base guided; do
  "$TERN" translate --checkpoint "$OUT/runs/$run/best.tern" -i "$WORK/test.en" --score-target "$WORK/test.es" \
    --alignment -o "$A/$run.test.links" 2> /dev/null
  printf '%8s attention against eflomal on the test pairs: ' "$run"
  python3 bench/alignments.py score "$A/test.al" "$A/$run.test.links"
done
