#!/usr/bin/env bash
# Right-to-left reranking measured on the Bible (Sennrich et al. 2016; Marian --right-left and n-best rescoring):
# bench/ablation.sh trains configs/bible.yaml left to right and right to left (model.right_left=true; the same steps
# and seed), then the left-to-right model's beam of BEAM hypotheses is reranked with the right-to-left model
# (translate --rescore): the weight of the right-to-left model is chosen on the valid split among WEIGHTS (0: the
# beam's own ranking), and the test split is translated once with it, with weight 1, and without reranking (beam 5 and
# BEAM), each scored against the raw references with sacreBLEU's paired bootstrap against beam 5 alone.
#   bench/right_left.sh          (STEPS=800, BEAM=8: ~16 min on 2 cores)
#   RUNS=runs/right-left-X/runs bench/right_left.sh    (the models of an earlier run: reranking only)
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
WORK=work/bible
BEAM=${BEAM:-8}
WEIGHTS=${WEIGHTS:-"0 0.25 0.5 1 2"}
OUT=${OUT:-runs/right-left-$(date +%Y%m%d-%H%M%S)}
[ -f "$WORK/test.en" ] || { echo "bench/right_left.sh: $WORK is missing: run scripts/run_bible.sh first" >&2; exit 4; }
[ ! -e "$OUT" ] || { echo "bench/right_left.sh: $OUT exists: give another OUT" >&2; exit 7; }
if [ -n "${RUNS:-}" ]; then
  mkdir -p "$OUT"
  R=$RUNS
else
  OUT="$OUT/runs" TERN="$TERN" bench/ablation.sh l2r "" r2l "model.right_left=true"
  R=$OUT/runs
fi
l2r=$R/l2r/best.tern r2l=$R/r2l/best.tern
bleu() {  # BLEU of a hypothesis file against split $1's references
  "$TERN" score "$WORK/$1.es" -i "$2" -m bleu -b -w 2
}
echo "valid split, beam $BEAM, the right-to-left model's weight (the left-to-right model's is 1):"
best_w="" best_b=-1
for w in $WEIGHTS; do
  "$TERN" translate --checkpoint "$l2r" --beam "$BEAM" --rescore "$r2l" --rescore-weights 1 "$w" \
    -i "$WORK/valid.en" -o "$OUT/valid.w$w.hyp" 2> /dev/null
  b=$(bleu valid "$OUT/valid.w$w.hyp")
  echo "  weight $w: BLEU $b"
  if python3 -c "import sys; sys.exit(0 if float('$b') > float('$best_b') else 1)"; then best_w=$w best_b=$b; fi
done
"$TERN" translate --checkpoint "$l2r" --beam "$BEAM" -i "$WORK/valid.en" -o "$OUT/valid.plain.hyp" 2> /dev/null
echo "  no reranking: BLEU $(bleu valid "$OUT/valid.plain.hyp")"
echo "test split (weight $best_w chosen on valid):"
"$TERN" translate --checkpoint "$l2r" --beam 5 -i "$WORK/test.en" -o "$OUT/test.beam5.hyp" 2> /dev/null
t0=$(date +%s.%N)
"$TERN" translate --checkpoint "$l2r" --beam "$BEAM" -i "$WORK/test.en" -o "$OUT/test.beam$BEAM.hyp" 2> /dev/null
t1=$(date +%s.%N)
"$TERN" translate --checkpoint "$l2r" --beam "$BEAM" --rescore "$r2l" -i "$WORK/test.en" \
  -o "$OUT/test.rerank1.hyp" 2> /dev/null
t2=$(date +%s.%N)
"$TERN" translate --checkpoint "$l2r" --beam "$BEAM" --rescore "$r2l" --rescore-weights 1 "$best_w" \
  -i "$WORK/test.en" -o "$OUT/test.rerank_tuned.hyp" 2> /dev/null
"$TERN" translate --checkpoint "$r2l" --beam 5 -i "$WORK/test.en" -o "$OUT/test.r2l_beam5.hyp" 2> /dev/null
echo "  $(wc -l < "$WORK/test.en") verses, beam $BEAM: $(python3 -c "print(round($t1 - $t0, 1))") s, with reranking" \
  "$(python3 -c "print(round($t2 - $t1, 1))") s (loading the models included)"
"$TERN" score "$WORK/test.es" -i "$OUT/test.beam5.hyp" "$OUT/test.beam$BEAM.hyp" "$OUT/test.rerank1.hyp" \
  "$OUT/test.rerank_tuned.hyp" "$OUT/test.r2l_beam5.hyp" -m bleu chrf --paired-bs -f text
