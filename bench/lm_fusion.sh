#!/usr/bin/env bash
# Shallow fusion on the Bible (translate/evaluate --lm): a Spanish LSTM language model on the target side of the
# default corpus (configs/bible_lm_es.yaml, with the corpus's target pieces) fused into the beam search of a
# configs/bible.yaml checkpoint. The weight is chosen on the valid split (BLEU, beam 5), then the test split is
# translated with and without the language model and compared by sacreBLEU's paired bootstrap test.
#   bench/lm_fusion.sh runs/bible-DATE/best.tern        (after scripts/run_bible.sh; ~6 min on 2 cores)
# Nothing existing is overwritten: the language model's corpus and run are reused when present; results go to OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
WORK=work/bible
DATA=${DATA:-$WORK/bible.h5}  # the translation model's corpus (bench/lm_fusion_domain.sh: another one with its pieces)
REFS=${REFS:-$WORK}           # where the raw references valid.es and test.es of its splits are
CKPT=${1:?usage: bench/lm_fusion.sh CHECKPOINT (a configs/bible.yaml run on $DATA)}
LM_RUN=${LM_RUN:-runs/bible_lm_es}
WEIGHTS=${WEIGHTS:-0.1 0.2 0.3 0.5}
OUT=${OUT:-runs/lm_fusion-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

if [ ! -f "$WORK/lm_es.h5" ]; then
  "$TERN" prepare --train-text "$WORK/train.es" --valid-text "$WORK/valid.es" --vocab-from "$WORK/bible.h5" \
    --max-tokens 100 --long-policy drop --out "$WORK/lm_es.h5"
fi
if [ ! -f "$LM_RUN/best.tern" ]; then
  "$TERN" train configs/bible_lm_es.yaml --set data.corpus="$WORK/lm_es.h5" --set train.run_dir="$LM_RUN"
fi
LM="$LM_RUN/best.tern"

# evaluate SPLIT NAME [--lm-weight W]: beam 5 with or without the language model -> $OUT/SPLIT_NAME.{json,hyp}
evaluate() {
  local split=$1 name=$2
  shift 2
  "$TERN" evaluate --checkpoint "$CKPT" --data "$DATA" --split "$split" --beam 5 --ref "$REFS/$split.es" \
    --attention-samples 0 --hyp-out "$OUT/${split}_$name.hyp" --json "$OUT/${split}_$name.json" "$@" > /dev/null
  python3 - "$OUT/${split}_$name.json" "$split" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["translation"]
print(f"{sys.argv[2]:5} {sys.argv[3]:>8}  BLEU {r['bleu']['score']:6.2f}  {r['chrf']['name']} {r['chrf']['score']:6.2f}  "
      f"{t['sentences_per_s']:6.1f} sentences/s")
PY
}

echo "== valid split (the weight is chosen here)"
evaluate valid none
best=none best_bleu=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bleu"]["score"])' "$OUT/valid_none.json")
for w in $WEIGHTS; do
  evaluate valid "$w" --lm "$LM" --lm-weight "$w"
  b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bleu"]["score"])' "$OUT/valid_$w.json")
  if python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > float(sys.argv[2]))' "$b" "$best_bleu"; then
    best=$w best_bleu=$b
  fi
done
echo "== test split: without the language model, and with the valid split's best weight ($best)"
evaluate test none
if [ "$best" != none ]; then
  evaluate test "$best" --lm "$LM" --lm-weight "$best"
  "$TERN" score "$REFS/test.es" -i "$OUT/test_none.hyp" "$OUT/test_$best.hyp" --paired-bs -m bleu chrf -f text
fi
echo "results: $OUT"
