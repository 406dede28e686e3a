#!/usr/bin/env bash
# Back-translation on the Bible, plain and tagged (Sennrich et al. 2016; Caswell et al. 2019, as fairseq and Marian
# users run it): half of the training verses are kept as parallel pairs (the even lines), of the other half only the
# Spanish is kept, as if it were monolingual text. A Spanish->English model trained on the parallel half translates
# that Spanish (beam 5, or BT_SAMPLING=1 for sampling); four English->Spanish models then train STEPS steps each on
#   parallel        the parallel half alone,
#   bt              the parallel half and the back-translated pairs (a second corpus part),
#   tagged          the same with each back-translated source starting with "<BT>", one piece (prepare --user-symbols),
#   full            the parallel half and the other half's real pairs (the ceiling),
# and are scored on the test split (beam 5; BLEU, chrF2, paired bootstrap against `parallel`: `tern report` of the
# four runs, $OUT/report/report.html). Needs work/bible (scripts/run_bible.sh);
# ~25 min on 2 cores with STEPS=800 (48 with STEPS=2000; docs/benchmarks.md has both). Everything goes to $OUT
# (default work/tagged_bt); rerunning skips what exists.
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
WORK=${WORK:-work/bible}
OUT=${OUT:-work/tagged_bt}
STEPS=${STEPS:-800}
mkdir -p "$OUT"
if [ ! -f "$OUT/par.en" ]; then
  for side in en es; do
    awk 'NR % 2 == 0' "$WORK/train.$side" > "$OUT/par.$side"
    awk 'NR % 2 == 1' "$WORK/train.$side" > "$OUT/mono.$side"
  done
fi
held=(--valid-src "$WORK/valid.en" --valid-tgt "$WORK/valid.es" --test-src "$WORK/test.en" --test-tgt "$WORK/test.es")
train() {  # NAME CORPUS...: configs/bible.yaml for STEPS steps on the listed parts
  local name=$1
  shift
  local parts
  parts=$(IFS=,; echo "$*")
  [ -f "$OUT/$name/best.tern" ] || "$TERN" train configs/bible.yaml --set "data.corpus=[$parts]" \
    --set train.run_dir="$OUT/$name" --set train.max_steps="$STEPS" --no-progress
}
# The backward model (es -> en) on the parallel half, and the back-translations of the monolingual Spanish.
[ -f "$OUT/back.h5" ] || "$TERN" prepare --train-src "$OUT/par.es" --train-tgt "$OUT/par.en" \
  --valid-src "$WORK/valid.es" --valid-tgt "$WORK/valid.en" --vocab-size 4000 --max-tokens 100 --out "$OUT/back.h5"
train back "$OUT/back.h5"
if [ ! -f "$OUT/mono.bt.en" ]; then
  if [ "${BT_SAMPLING:-0}" = 1 ]; then how=(--sampling --seed 1); else how=(--beam 5); fi
  "$TERN" translate --checkpoint "$OUT/back/best.tern" "${how[@]}" --batch 64 -i "$OUT/mono.es" -o "$OUT/mono.bt.en"
fi
sed 's/^/<BT> /' "$OUT/mono.bt.en" > "$OUT/mono.bt.tagged.en"
# The forward corpora: the parallel half (its models keep "<BT>" whole), and three parts that reuse its models.
[ -f "$OUT/par.h5" ] || "$TERN" prepare --train-src "$OUT/par.en" --train-tgt "$OUT/par.es" "${held[@]}" \
  --vocab-size 4000 --max-tokens 100 --user-symbols '<BT>' --out "$OUT/par.h5"
for part in bt:mono.bt.en tagged:mono.bt.tagged.en real:mono.en; do
  [ -f "$OUT/${part%%:*}.h5" ] || "$TERN" prepare --train-src "$OUT/${part#*:}" --train-tgt "$OUT/mono.es" \
    --vocab-from "$OUT/par.h5" --max-tokens 100 --out "$OUT/${part%%:*}.h5"
done
train parallel "$OUT/par.h5"
train bt "$OUT/par.h5" "$OUT/bt.h5"
train tagged "$OUT/par.h5" "$OUT/tagged.h5"
train full "$OUT/par.h5" "$OUT/real.h5"
for name in parallel bt tagged full; do
  [ -f "$OUT/$name/test_eval.json" ] || "$TERN" evaluate --checkpoint "$OUT/$name/best.tern" --data "$OUT/par.h5" \
    --split test --beam 5 --ref "$WORK/test.es" --hyp-out "$OUT/$name/test.hyp" --json "$OUT/$name/test_eval.json" \
    > /dev/null
done
# One page: the settings that differ, the curves side by side, the test scores and the paired bootstrap against
# `parallel` (tern report with several runs); its Markdown goes to stdout.
"$TERN" report "$OUT/parallel" "$OUT/bt" "$OUT/tagged" "$OUT/full" --out "$OUT/report" --overwrite > /dev/null
cat "$OUT/report/report.md"
