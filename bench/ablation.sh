#!/usr/bin/env bash
# An ablation on the Bible: configs/bible.yaml trained once per variant (its --set overrides), each variant's best.tern
# translated on the test split (beam 5) and scored against the raw references, then one `tern report` page with every
# run's curves, the settings that differ and sacreBLEU's paired bootstrap test of each run against the first.
#   bench/ablation.sh plain "model.layers=4" residual "model.layers=4 model.residual=true"
#   STEPS=3000 bench/ablation.sh base "" words "model.dropout_src=0.1 model.dropout_tgt=0.1"
# Needs the default corpus (scripts/run_bible.sh makes it). ~5 min a variant on 2 cores at 800 steps (one layer).
# Results go to OUT (a new directory: nothing existing is overwritten).
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
WORK=work/bible
CORPUS=${CORPUS:-$WORK/bible.h5}  # another corpus of the same test pairs (bench/guided_alignment.sh: with alignments)
STEPS=${STEPS:-800}
OUT=${OUT:-runs/ablation-$(date +%Y%m%d-%H%M%S)}
if [ $# -lt 2 ] || [ $(($# % 2)) -ne 0 ]; then
  echo "usage: bench/ablation.sh NAME \"KEY=VALUE ...\" [NAME \"KEY=VALUE ...\" ...]" >&2
  exit 2
fi
[ -f "$CORPUS" ] || { echo "bench/ablation.sh: $CORPUS is missing: run scripts/run_bible.sh first" >&2; exit 4; }
[ ! -e "$OUT" ] || { echo "bench/ablation.sh: $OUT exists: give another OUT" >&2; exit 7; }
mkdir -p "$OUT"

runs=()
while [ $# -gt 0 ]; do
  name=$1 sets=()
  for kv in $2; do sets+=(--set "$kv"); done
  shift 2
  run="$OUT/$name"
  rc=0
  "$TERN" train configs/bible.yaml --set data.corpus="$CORPUS" --set train.run_dir="$run" \
    --set train.max_steps="$STEPS" "${sets[@]}" --no-progress 2> "$OUT/$name.train.log" || rc=$?
  [ $rc = 0 ] || { tail -3 "$OUT/$name.train.log" >&2; echo "bench/ablation.sh: $name: training failed" >&2; exit $rc; }
  "$TERN" evaluate --checkpoint "$run/best.tern" --data "$CORPUS" --split test --beam 5 --ref "$WORK/test.es" \
    --hyp-out "$run/test.hyp.es" --json "$run/test_eval.json" > /dev/null 2> "$OUT/$name.eval.log" || rc=$?
  [ $rc = 0 ] || { tail -3 "$OUT/$name.eval.log" >&2; echo "bench/ablation.sh: $name: evaluation failed" >&2; exit $rc; }
  python3 - "$run/test_eval.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:>12}  step {r['step']:5}  test perplexity {r['perplexity']['ppl_per_token']:7.2f}  "
      f"BLEU {r['bleu']['score']:6.2f}  {r['chrf']['name']} {r['chrf']['score']:6.2f}")
PY
  runs+=("$run")
done
"$TERN" report "${runs[@]}" --out "$OUT/report" > /dev/null
echo "report (curves, differing settings, paired bootstrap against ${runs[0]}): $OUT/report/report.html"
