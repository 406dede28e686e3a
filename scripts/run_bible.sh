#!/usr/bin/env bash
# The default job: English->Spanish Bible from Debian's SWORD modules -> HDF5 corpus -> train the attention seq2seq
# of configs/bible.yaml on CPU for a fixed number of steps (STEPS, default 800: a few minutes on 2 cores) -> evaluate on
# held-out books: perplexity and BLEU. A fixed step count, not a time limit, so every run prints the same figures.
# Nothing existing is overwritten: the corpus is reused when present, each run gets its own directory.
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
WORK=work/bible
RUN_DIR=${RUN_DIR:-runs/bible-$(date +%Y%m%d-%H%M%S)}
STEPS=${STEPS:-800}

if [ ! -f "$WORK/train.en" ]; then
  python3 scripts/bible_corpus.py --out "$WORK"
fi
# A corpus from an older tern (format 1) is kept aside as bible.h5.v1 and prepared again.
if [ -f "$WORK/bible.h5" ] && ! python3 -c 'import h5py,sys; sys.exit(int(h5py.File(sys.argv[1],"r").attrs["format_version"]) != 2)' "$WORK/bible.h5"; then
  mv "$WORK/bible.h5" "$WORK/bible.h5.v1"
fi
if [ ! -f "$WORK/bible.h5" ]; then
  "$TERN" prepare --train-src "$WORK/train.en" --train-tgt "$WORK/train.es" \
    --valid-src "$WORK/valid.en" --valid-tgt "$WORK/valid.es" --test-src "$WORK/test.en" --test-tgt "$WORK/test.es" \
    --vocab-size 4000 --max-tokens 100 --long-policy drop --out "$WORK/bible.h5"
fi
"$TERN" train configs/bible.yaml --set data.corpus="$WORK/bible.h5" --set train.run_dir="$RUN_DIR" \
  --set train.max_steps="$STEPS"
CKPT="$RUN_DIR/best.tern"
[ -f "$CKPT" ] || CKPT="$RUN_DIR/$(cat "$RUN_DIR/latest")"
"$TERN" evaluate --checkpoint "$CKPT" --data "$WORK/bible.h5" --split test --beam 5 \
  --ref "$WORK/test.es" --hyp-out "$RUN_DIR/test.hyp.es" --json "$RUN_DIR/test_eval.json" > /dev/null
python3 - "$RUN_DIR/test_eval.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["perplexity"]
print(f"\n== tern default run: {r['checkpoint']} (step {r['step']}), test split ({r['sentences']} held-out verses)")
print(f"perplexity per subword token {p['ppl_per_token']:.2f} ({p['cross_entropy_bits_per_token']:.3f} bits), "
      f"per word {p['ppl_per_word']:.2f}")
print(f"{r['bleu']['text']}\nsignature {r['bleu']['signature']}; beam {r['translation']['beam']}, "
      f"{r['translation']['sentences_per_s']:.1f} sentences/s")
PY
echo "hypotheses: $RUN_DIR/test.hyp.es; metrics: $RUN_DIR/metrics.jsonl; log: $RUN_DIR/train.log"
