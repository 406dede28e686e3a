#!/usr/bin/env bash
# LSTM and feed-forward language models against n-gram baselines on the same text: King James Bible (held-out books as
# valid/test), SentencePiece pieces from one `tern prepare`; the sentence-mode LSTM (configs/bible_lm.yaml) and the
# FFNN (configs/bible_ffnn_lm.yaml) each trained for MINUTES on CPU, the stream-mode LSTM (configs/bible_lm_stream.yaml)
# for STREAM_MINUTES (default 30); every model scored on the same test split, per piece with one </s> per verse (the
# stream LSTM in both modes: state carried across verses, and each verse from zeros). n-grams: every smoothing, and
# Kneser-Ney/Katz with cutoffs and pruning. A model whose run directory already holds best.tern is not trained again.
# Prints a table; writes $RUN_DIR/lm_vs_ngram.json.
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
BIBLE=work/bible
WORK=work/kjv_lm
RUN_DIR=${RUN_DIR:-runs/kjv-lm-$(date +%Y%m%d-%H%M%S)}
MINUTES=${MINUTES:-5}
STREAM_MINUTES=${STREAM_MINUTES:-30}

[ -f "$BIBLE/train.en" ] || python3 scripts/bible_corpus.py --out "$BIBLE"
mkdir -p "$WORK"
if [ ! -f "$WORK/kjv.h5" ]; then
  "$TERN" prepare --train-text "$BIBLE/train.en" --valid-text "$BIBLE/valid.en" --test-text "$BIBLE/test.en" \
    --vocab-size 4000 --max-tokens 150 --long-policy drop --out "$WORK/kjv.h5"
fi
for model in lstm ffnn stream; do
  cfg=configs/bible_lm.yaml dir="$RUN_DIR" minutes=$MINUTES
  [ "$model" = ffnn ] && cfg=configs/bible_ffnn_lm.yaml dir="$RUN_DIR/ffnn"
  [ "$model" = stream ] && cfg=configs/bible_lm_stream.yaml dir="$RUN_DIR/stream" minutes=$STREAM_MINUTES
  if [ ! -f "$dir/best.tern" ]; then
    "$TERN" train "$cfg" --set data.corpus="$WORK/kjv.h5" --set train.run_dir="$dir" \
      --set train.max_minutes="$minutes" --no-progress
  fi
  CKPT="$dir/best.tern"
  [ -f "$CKPT" ] || CKPT="$dir/$(cat "$dir/latest")"
  "$TERN" evaluate --checkpoint "$CKPT" --data "$WORK/kjv.h5" --split test --no-translate \
    --json "$RUN_DIR/${model}_test.json" --overwrite > /dev/null  # a rerun rewrites it
done
for spec in "3 kneser-ney" "5 kneser-ney" "5 kneser-ney --prune 1e-7" "3 katz" "5 katz" "5 katz --cutoff 1,1,2" \
  "3 interpolated" "5 interpolated" "3 add-k" "3 laplace"; do
  set -- $spec
  name="o$1_$2${3:+_pruned}"
  "$TERN" ngram --order "$1" --smoothing "$2" "${@:3}" --train "$WORK/kjv.h5" --heldout "$WORK/kjv.h5" \
    --test "$WORK/kjv.h5" -f json > "$RUN_DIR/ngram_$name.json"
done
python3 - "$RUN_DIR" <<'PY'
import glob, json, os, sys
run = sys.argv[1]
rows = []
for name, label in (("lstm", "LSTM LM, sentence mode"), ("ffnn", "FFNN LM"), ("stream", "LSTM LM, stream mode")):
    r = json.load(open(f"{run}/{name}_test.json"))
    p = r["perplexity"]
    rows.append((f"{label} (step {r['step']})", p["ppl_per_token"], p["cross_entropy_bits_per_token"]))
    if "perplexity_sentence_mode" in r:
        p = r["perplexity_sentence_mode"]
        rows.append((f"{label}, scored verse by verse", p["ppl_per_token"], p["cross_entropy_bits_per_token"]))
lstm = r
for f in sorted(glob.glob(f"{run}/ngram_*.json")):
    r = json.load(open(f))
    extra = (f" cutoff {','.join(map(str, r['cutoffs']))}" if "cutoffs" in r else "") + \
        (f" prune {r['prune']:g}" if "prune" in r else "")
    size = f" ({sum(r['ngrams'])} n-grams)" if extra else ""
    rows.append((f"{r['order']}-gram {r['smoothing']}{extra}{size}", r["ppl"], r["bits_per_token"]))
print(f"\n== test split ({lstm['sentences']} held-out verses), perplexity per SentencePiece piece, </s> counted")
for name, ppl, bits in sorted(rows, key=lambda r: r[1]):
    print(f"{name:55s} PPL {ppl:9.2f}  ({bits:.3f} bits/piece)")
json.dump([{"model": n, "ppl_per_piece": p, "bits_per_piece": b} for n, p, b in rows],
          open(f"{run}/lm_vs_ngram.json", "w"), indent=1)
PY
