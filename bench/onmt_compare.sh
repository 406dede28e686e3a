#!/usr/bin/env bash
# tern and OpenNMT-py 3.5.1 side by side, in one run on one machine: the same Bible corpus (the pieces of tern's
# SentencePiece models, so both see identical token sequences and vocabularies), the same architecture
# (configs/bible.yaml: 1-layer bidirectional LSTM encoder, LSTM decoder without input feeding, Luong general
# attention, 256 units, tied target embeddings, dropout 0.1) and recipe (Adam, lr rising linearly to 0.002 at step 200
# then 1/sqrt(step): OpenNMT-py noam with hidden 256 is the same curve; 3000-token batches, label smoothing 0.1, clip
# 1.0), STEPS training steps each; then beam search
# on the 470 held-out test verses (beam BEAM, batch BATCH sentences, GNMT length penalty 0.6 in both).
# tern decodes twice: its default search (a sentence ends when beam hypotheses have ended, as fairseq) and with
# --early-stop (a sentence ends when its best continuation is </s>: OpenNMT-py's rule, the like-for-like comparison).
# Prints training tokens/s, translation sentences/s and BLEU (sacreBLEU-exact `tern score` on the raw references)
# with the tern/OpenNMT-py ratios, and writes them to $OUT/compare.json.
#
#   bench/onmt_compare.sh                 # STEPS=850 BEAM=5 BATCH=64 OUT=work/onmt_compare
# OpenNMT-py goes into a venv (work/onmt-venv, --system-site-packages so it uses this machine's torch, --no-deps for
# opennmt-py itself); torch 2.11 needs TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 to read its checkpoints. Both use every
# core (OMP_NUM_THREADS unset): run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
STEPS=${STEPS:-850}
BEAM=${BEAM:-5}
BATCH=${BATCH:-64}
OUT=${OUT:-work/onmt_compare}
VENV=${ONMT_VENV:-work/onmt-venv}
CORPUS=${CORPUS:-work/bible/bible.h5}
unset OMP_NUM_THREADS

if [ ! -f "$CORPUS" ]; then STEPS=0 scripts/run_bible.sh > /dev/null 2>&1 || true; fi
[ -f "$CORPUS" ] || { echo "onmt_compare: $CORPUS is missing: run scripts/run_bible.sh first" >&2; exit 1; }
if [ ! -x "$VENV/bin/onmt_train" ]; then
  echo "== installing OpenNMT-py 3.5.1 into $VENV"
  python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q --no-deps opennmt-py==3.5.1
  # What opennmt-py imports at start-up (torch comes from the system site-packages).
  "$VENV/bin/pip" install -q configargparse pyonmttok spacy pyahocorasick rapidfuzz tensorboard waitress \
    fasttext-wheel sacremoses 2>&1 | grep -v "requires torch\|dependency resolver\|ctranslate2" || true
fi
rm -rf "$OUT" && mkdir -p "$OUT/data"

echo "== exporting the corpus's pieces for OpenNMT-py"
python3 - "$CORPUS" "$OUT/data" <<'PY'
import h5py, sentencepiece as spm, sys
f, out = h5py.File(sys.argv[1], "r"), sys.argv[2]
for side in ("src", "tgt"):
    sp = spm.SentencePieceProcessor(model_proto=f["vocab/" + side][:].tobytes())
    with open(f"{out}/vocab.{side}", "w") as v:  # every piece but tern's pad/unk/bos/eos, as OpenNMT-py adds its own
        for i in range(4, sp.get_piece_size()):
            v.write(f"{sp.id_to_piece(i)}\t{sp.get_piece_size() - i}\n")
    with open(f"{out}/spm.{side}", "wb") as m:
        m.write(f["vocab/" + side][:].tobytes())
    for split in ("train", "valid", "test"):
        off, tok = f[f"{split}/{side}/offsets"][:], f[f"{split}/{side}/tokens"][:]
        with open(f"{out}/{split}.{side}", "w") as o:
            for i in range(len(off) - 1):
                o.write(" ".join(sp.id_to_piece(int(t)) for t in tok[off[i]:off[i + 1]]) + "\n")
PY

cat > "$OUT/onmt.yaml" <<EOF
data:
  corpus_1: {path_src: $OUT/data/train.src, path_tgt: $OUT/data/train.tgt}
  valid: {path_src: $OUT/data/valid.src, path_tgt: $OUT/data/valid.tgt}
src_vocab: $OUT/data/vocab.src
tgt_vocab: $OUT/data/vocab.tgt
src_vocab_size: 4000
tgt_vocab_size: 4000
src_seq_length: 1000
tgt_seq_length: 1000
save_model: $OUT/onmt/model
save_checkpoint_steps: $STEPS
train_steps: $STEPS
valid_steps: 1000000
report_every: 25
seed: 1
encoder_type: brnn
decoder_type: rnn
rnn_type: LSTM
layers: 1
hidden_size: 256
word_vec_size: 256
global_attention: general
input_feed: 0
share_decoder_embeddings: true
dropout: [0.1]
optim: adam
learning_rate: $(python3 -c "print(0.002 * 256 ** 0.5 * 200 ** 0.5)")
decay_method: noam
warmup_steps: 200
max_grad_norm: 1.0
label_smoothing: 0.1
batch_type: tokens
batch_size: 3000
valid_batch_size: 64
num_workers: 0
EOF

echo "== OpenNMT-py: training $STEPS steps"
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$VENV/bin/onmt_train" -config "$OUT/onmt.yaml" > "$OUT/onmt_train.log" 2>&1
echo "== OpenNMT-py: beam $BEAM on the test split"
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$VENV/bin/onmt_translate" -model "$OUT/onmt/model_step_$STEPS.pt" \
  -src "$OUT/data/test.src" -output "$OUT/onmt.test.pieces" -beam_size "$BEAM" -batch_size "$BATCH" \
  -batch_type sents -length_penalty wu -alpha 0.6 -max_length 250 -report_time > "$OUT/onmt_translate.log" 2>&1
python3 - "$OUT/data/spm.tgt" "$OUT/onmt.test.pieces" "$OUT/onmt.test.es" <<'PY'
import sentencepiece as spm, sys
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2]) as i, open(sys.argv[3], "w") as o:
    for line in i:
        o.write(sp.decode_pieces(line.split()) + "\n")
PY

echo "== tern: training $STEPS steps"
"$TERN" train configs/bible.yaml --set data.corpus="$CORPUS" --set train.run_dir="$OUT/tern" \
  --set train.max_steps="$STEPS" --set train.valid_every=0 --set train.save_every=0 \
  > "$OUT/tern_train.log" 2>&1
echo "== tern: beam $BEAM on the test split"
"$TERN" bench translate --checkpoint "$OUT/tern/$(cat "$OUT/tern/latest")" --data "$CORPUS" --beams "$BEAM" \
  --batches "$BATCH" --json "$OUT/tern_translate.json" > "$OUT/tern_translate.log" 2>&1
"$TERN" evaluate --checkpoint "$OUT/tern/$(cat "$OUT/tern/latest")" --data "$CORPUS" --split test --beam "$BEAM" \
  --batch "$BATCH" --hyp-out "$OUT/tern.test.es" > /dev/null 2> "$OUT/tern_evaluate.log"

echo "== tern: beam $BEAM with --early-stop (OpenNMT-py's stopping rule)"
"$TERN" bench translate --checkpoint "$OUT/tern/$(cat "$OUT/tern/latest")" --data "$CORPUS" --beams "$BEAM" \
  --batches "$BATCH" --early-stop --json "$OUT/tern_translate_early.json" > "$OUT/tern_translate_early.log" 2>&1
"$TERN" evaluate --checkpoint "$OUT/tern/$(cat "$OUT/tern/latest")" --data "$CORPUS" --split test --beam "$BEAM" \
  --batch "$BATCH" --early-stop --hyp-out "$OUT/tern_early.test.es" > /dev/null 2> "$OUT/tern_evaluate_early.log"

REF=$(dirname "$CORPUS")/test.es
"$TERN" score "$REF" -i "$OUT/tern.test.es" -w 2 > "$OUT/tern.bleu.json"
"$TERN" score "$REF" -i "$OUT/tern_early.test.es" -w 2 > "$OUT/tern_early.bleu.json"
"$TERN" score "$REF" -i "$OUT/onmt.test.es" -w 2 > "$OUT/onmt.bleu.json"
python3 - "$OUT" "$STEPS" "$BEAM" "$BATCH" <<'PY'
import json, re, statistics, sys
out, steps, beam, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
# Training tokens/s (source + target, as each tool reports per 25 steps): the median, the first report (start-up)
# left out; a median, so that one interval disturbed by another process does not move it.
onmt = [int(a) + int(b) for a, b in re.findall(r"(\d+)/\s*(\d+) tok/s", open(f"{out}/onmt_train.log").read())]
tern = [r["tokens_per_s"] for r in map(json.loads, open(f"{out}/tern/metrics.jsonl")) if r.get("kind") == "train"]
onmt_tok, tern_tok = (statistics.median(v[1:] if len(v) > 1 else v) for v in (onmt, tern))
log = open(f"{out}/onmt_translate.log").read()
onmt_secs = float(re.search(r"Total translation time \(s\): ([0-9.]+)", log).group(1))
sentences = sum(1 for _ in open(f"{out}/onmt.test.es"))
onmt_sps = sentences / onmt_secs
tern_sps, early_sps = (json.load(open(f"{out}/{f}.json"))[0]["sentences_per_s"]
                       for f in ("tern_translate", "tern_translate_early"))
onmt_bleu, tern_bleu, early_bleu = (json.load(open(f"{out}/{t}.bleu.json"))["score"]
                                    for t in ("onmt", "tern", "tern_early"))
r = {"steps": steps, "beam": beam, "batch": batch, "test_sentences": sentences,
     "train_tokens_per_s": {"tern": tern_tok, "opennmt_py": onmt_tok, "ratio": tern_tok / onmt_tok},
     "translate_sentences_per_s": {"tern": tern_sps, "tern_early_stop": early_sps, "opennmt_py": onmt_sps,
                                   "ratio": tern_sps / onmt_sps, "ratio_early_stop": early_sps / onmt_sps},
     "bleu": {"tern": tern_bleu, "tern_early_stop": early_bleu, "opennmt_py": onmt_bleu}}
json.dump(r, open(f"{out}/compare.json", "w"), indent=2)
print(f"\n{'':28}{'tern':>10}{'OpenNMT-py':>12}{'ratio':>8}")
print(f"{'train tokens/s (src+tgt)':28}{tern_tok:>10.0f}{onmt_tok:>12.0f}{tern_tok / onmt_tok:>7.2f}x")
print(f"{f'translate sentences/s (beam {beam})':28}{tern_sps:>10.1f}{onmt_sps:>12.1f}{tern_sps / onmt_sps:>7.2f}x")
print(f"{'  with --early-stop':28}{early_sps:>10.1f}{onmt_sps:>12.1f}{early_sps / onmt_sps:>7.2f}x")
print(f"{f'BLEU after {steps} steps':28}{tern_bleu:>10.2f}{onmt_bleu:>12.2f}")
print(f"{'  with --early-stop':28}{early_bleu:>10.2f}")
print(f"({sentences} test verses, batch {batch}, both with every core; details in {out}/compare.json)")
PY
