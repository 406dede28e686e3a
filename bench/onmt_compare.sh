#!/usr/bin/env bash
# tern and OpenNMT-py 3.5.1 side by side, in one run on one machine: the same Bible corpus (the pieces of tern's
# SentencePiece models, so both see identical token sequences and vocabularies), the same architecture
# (configs/bible.yaml: 1-layer bidirectional LSTM encoder, LSTM decoder without input feeding, Luong general
# attention, 256 units, tied target embeddings, dropout 0.1) and recipe (Adam, lr rising linearly to 0.002 at step 200
# then 1/sqrt(step): OpenNMT-py noam with hidden 256 is the same curve; 3000-token batches, label smoothing 0.1, clip
# 1.0), STEPS training steps each; then beam search
# on the 470 held-out test verses (beam BEAM, batch BATCH sentences, GNMT length penalty 0.6 in both).
# tern decodes five ways: its default search (a sentence ends when beam hypotheses have ended, as fairseq), with
# --early-stop (a sentence ends when its best continuation is </s>: OpenNMT-py's rule, the like-for-like comparison),
# with --early-stop --int8 (the output layer's product in int8, as Marian and CTranslate2 decode on CPUs), with a
# lexical shortlist (--shortlist, Marian's: the output layer over each batch's candidate tokens only; `tern shortlist`
# learns it from the training pairs) and with all three.
# Decoding runs REPEATS interleaved rounds and compares medians. Prints training tokens/s, translation sentences/s
# and BLEU (sacreBLEU-exact `tern score` on the raw references) with the tern/OpenNMT-py ratios, then whether the
# BLEU and chrF differences are significant (`tern score --paired-bs`, OpenNMT-py the baseline), and writes them to
# $OUT/compare.json.
#
#   bench/onmt_compare.sh                 # STEPS=850 BEAM=5 BATCH=64 REPEATS=5 OUT=work/onmt_compare
#   DECODE_ONLY=1 bench/onmt_compare.sh   # decode again with the models an earlier run trained in OUT
#   DEVICE=cuda ONMT_WHEELS=.gpu_bundle/wheels bench/onmt_compare.sh   # on the GPU machine (scripts/gpu_check.sh)
# OpenNMT-py goes into a venv (work/onmt-venv, --system-site-packages so it uses this machine's torch, --no-deps for
# opennmt-py itself); torch 2.11 needs TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 to read its checkpoints. Both use every
# core (OMP_NUM_THREADS unset): run it on a quiet machine. Without network (the GPU machine), ONMT_WHEELS names a
# folder of wheels (scripts/gpu_bundle.sh: opennmt-py, configargparse, pyonmttok, sentencepiece), unpacked into
# $OUT/onmt-py (on PYTHONPATH); the three modules OpenNMT-py imports at start-up only for transforms this comparison
# does not use (spacy, ahocorasick, rapidfuzz) are replaced there by modules that raise ImportError when touched.
# DEVICE=cuda trains and decodes both on the GPU (OpenNMT-py: gpu_ranks [0], -gpu 0); --int8 is CPU-only, so
# there tern decodes with its default search, --early-stop and --shortlist.
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
STEPS=${STEPS:-850}
BEAM=${BEAM:-5}
BATCH=${BATCH:-64}
REPEATS=${REPEATS:-5}
OUT=${OUT:-work/onmt_compare}
VENV=${ONMT_VENV:-work/onmt-venv}
CORPUS=${CORPUS:-work/bible/bible.h5}
REF=${REF:-$(dirname "$CORPUS")/test.es}
DEVICE=${DEVICE:-cpu}
unset OMP_NUM_THREADS
case "$DEVICE" in
  cpu) TERN_SETTINGS=("default:" "early_stop:--early-stop" "int8:--early-stop --int8"
                      "shortlist:--shortlist $OUT/lex.bin" "shortlist_int8:--early-stop --int8 --shortlist $OUT/lex.bin") ;;
  cuda) TERN_SETTINGS=("default:" "early_stop:--early-stop" "shortlist:--shortlist $OUT/lex.bin") ;;
  *) echo "onmt_compare: DEVICE must be cpu or cuda, not '$DEVICE'" >&2; exit 2 ;;
esac

if [ ! -f "$CORPUS" ]; then STEPS=0 scripts/run_bible.sh > /dev/null 2>&1 || true; fi
[ -f "$CORPUS" ] || { echo "onmt_compare: $CORPUS is missing: run scripts/run_bible.sh first" >&2; exit 1; }
[ -f "$REF" ] || { echo "onmt_compare: the raw test references $REF are missing (set REF)" >&2; exit 1; }
if [ -n "${ONMT_WHEELS:-}" ]; then
  SLIM=$OUT/onmt-py
  if [ ! -d "$SLIM/onmt" ]; then
    echo "== installing OpenNMT-py 3.5.1 from $ONMT_WHEELS into $SLIM"
    for w in "$ONMT_WHEELS"/*.whl; do python3 -m zipfile -e "$w" "$SLIM"; done  # a wheel is a zip (no pip needed)
    for m in spacy ahocorasick rapidfuzz fasttext sacremoses; do
      python3 -c "import $m" 2> /dev/null || cat > "$SLIM/$m.py" <<EOF
class _Missing:  # any name of the module; using it raises
    def __getattr__(self, name):
        return self
    def __call__(self, *args, **kwargs):
        raise ImportError("$m is not installed: onmt_compare.sh uses no OpenNMT-py transform that needs it")
def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing()
EOF
    done
  fi
  export PYTHONPATH=$SLIM${PYTHONPATH:+:$PYTHONPATH}
  onmt() {
    local tool=$1
    shift
    python3 -c "import sys; from onmt.bin.$tool import main; sys.argv[0] = 'onmt_$tool'; main()" "$@"
  }
else
  onmt() {
    local tool=$1
    shift
    "$VENV/bin/onmt_$tool" "$@"
  }
fi
if [ -z "${ONMT_WHEELS:-}" ] && [ ! -x "$VENV/bin/onmt_train" ]; then
  echo "== installing OpenNMT-py 3.5.1 into $VENV"
  python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q --no-deps opennmt-py==3.5.1
  # What opennmt-py imports at start-up (torch comes from the system site-packages).
  "$VENV/bin/pip" install -q configargparse pyonmttok spacy pyahocorasick rapidfuzz tensorboard waitress \
    fasttext-wheel sacremoses 2>&1 | grep -v "requires torch\|dependency resolver\|ctranslate2" || true
fi
if [ "${DECODE_ONLY:-0}" = 1 ]; then
  [ -f "$OUT/onmt/model_step_$STEPS.pt" ] && [ -f "$OUT/tern/latest" ] ||
    { echo "onmt_compare: DECODE_ONLY=1 needs the models of an earlier run in $OUT" >&2; exit 1; }
else
rm -rf "$OUT/data" "$OUT/onmt" "$OUT/tern" && mkdir -p "$OUT/data"

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
[ "$DEVICE" = cuda ] && printf 'world_size: 1\ngpu_ranks: [0]\n' >> "$OUT/onmt.yaml"

echo "== OpenNMT-py: training $STEPS steps"
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 onmt train -config "$OUT/onmt.yaml" > "$OUT/onmt_train.log" 2>&1
echo "== tern: training $STEPS steps"
"$TERN" train configs/bible.yaml --set data.corpus="$CORPUS" --set train.run_dir="$OUT/tern" \
  --set train.max_steps="$STEPS" --set train.valid_every=0 --set train.save_every=0 --set train.device="$DEVICE" \
  > "$OUT/tern_train.log" 2>&1
fi
# Decoding speed varies by +-20% from minute to minute on a shared VM: REPEATS rounds, each decoding once with
# OpenNMT-py and once with every tern setting, and the medians are compared. The settings: tern's default search,
# --early-stop (OpenNMT-py's stopping rule: the like-for-like search), and on the CPU --early-stop --int8 (int8
# output layer).
ONMT_DEVICE=()
[ "$DEVICE" = cuda ] && ONMT_DEVICE=(-gpu 0)
CKPT="$OUT/tern/$(cat "$OUT/tern/latest")"
# The lexical shortlist of the --shortlist settings (Marian's defaults: the 100 most frequent target tokens and the 100
# most likely translations of each source token), learned from the training pairs.
"$TERN" shortlist --data "$CORPUS" --out "$OUT/lex.bin" --overwrite 2> "$OUT/shortlist.log"
for round in $(seq 1 "$REPEATS"); do
  echo "== decoding, round $round of $REPEATS: OpenNMT-py, then tern ${TERN_SETTINGS[*]%%:*}"
  TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 onmt translate -model "$OUT/onmt/model_step_$STEPS.pt" \
    -src "$OUT/data/test.src" -output "$OUT/onmt.test.pieces" -beam_size "$BEAM" -batch_size "$BATCH" \
    -batch_type sents -length_penalty wu -alpha 0.6 -max_length 250 -report_time "${ONMT_DEVICE[@]}" \
    > "$OUT/onmt_translate.$round.log" 2>&1
  for s in "${TERN_SETTINGS[@]}"; do
    # shellcheck disable=SC2086  # the flags split into words
    "$TERN" bench translate --checkpoint "$CKPT" --data "$CORPUS" --beams "$BEAM" --batches "$BATCH" ${s#*:} \
      --device "$DEVICE" --json "$OUT/tern_translate.${s%%:*}.$round.json" --overwrite > /dev/null 2>&1
  done
done
python3 - "$OUT/data/spm.tgt" "$OUT/onmt.test.pieces" "$OUT/onmt.test.es" <<'PY'
import sentencepiece as spm, sys
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2]) as i, open(sys.argv[3], "w") as o:
    for line in i:
        o.write(sp.decode_pieces(line.split()) + "\n")
PY
"$TERN" score "$REF" -i "$OUT/onmt.test.es" -w 2 > "$OUT/onmt.bleu.json"
for s in "${TERN_SETTINGS[@]}"; do
  # shellcheck disable=SC2086
  "$TERN" evaluate --checkpoint "$CKPT" --data "$CORPUS" --split test --beam "$BEAM" --batch "$BATCH" ${s#*:} \
    --device "$DEVICE" --hyp-out "$OUT/tern.${s%%:*}.test.es" --overwrite > /dev/null 2> "$OUT/tern_evaluate.${s%%:*}.log"
  "$TERN" score "$REF" -i "$OUT/tern.${s%%:*}.test.es" -w 2 > "$OUT/tern.${s%%:*}.bleu.json"
done
# Are the BLEU and chrF differences more than the luck of 470 verses? sacreBLEU's paired bootstrap test, OpenNMT-py
# the baseline (its JSON: each system's score, mean, 95% interval and p-value).
systems=("$OUT/onmt.test.es")
for s in "${TERN_SETTINGS[@]}"; do systems+=("$OUT/tern.${s%%:*}.test.es"); done
"$TERN" score "$REF" -i "${systems[@]}" --paired-bs -m bleu chrf > "$OUT/paired_bs.json"
python3 - "$OUT" "$STEPS" "$BEAM" "$BATCH" "$REPEATS" "$DEVICE" "${TERN_SETTINGS[@]%%:*}" <<'PY'
import json, re, statistics, sys
out, steps, beam, batch, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
device, settings = sys.argv[6], sys.argv[7:]
# Training tokens/s (source + target, as each tool reports per 25 steps): the median, the first report (start-up)
# left out; a median, so that one interval disturbed by another process does not move it.
onmt = [int(a) + int(b) for a, b in re.findall(r"(\d+)/\s*(\d+) tok/s", open(f"{out}/onmt_train.log").read())]
tern = [r["tokens_per_s"] for r in map(json.loads, open(f"{out}/tern/metrics.jsonl")) if r.get("kind") == "train"]
onmt_tok, tern_tok = (statistics.median(v[1:] if len(v) > 1 else v) for v in (onmt, tern))
sentences = sum(1 for _ in open(f"{out}/onmt.test.es"))
onmt_runs = [sentences / float(re.search(r"Total translation time \(s\): ([0-9.]+)",
                                          open(f"{out}/onmt_translate.{k}.log").read()).group(1))
             for k in range(1, repeats + 1)]
tern_runs = {s: [json.load(open(f"{out}/tern_translate.{s}.{k}.json"))[0]["sentences_per_s"]
                 for k in range(1, repeats + 1)] for s in settings}
onmt_sps = statistics.median(onmt_runs)
tern_sps = {s: statistics.median(v) for s, v in tern_runs.items()}
bleu = {t: json.load(open(f"{out}/{t}.bleu.json"))["score"] for t in ("onmt", *(f"tern.{s}" for s in settings))}
r = {"device": device, "steps": steps, "beam": beam, "batch": batch, "test_sentences": sentences, "decode_rounds": repeats,
     "train_tokens_per_s": {"tern": tern_tok, "opennmt_py": onmt_tok, "ratio": tern_tok / onmt_tok},
     "translate_sentences_per_s": {"opennmt_py": onmt_sps, "opennmt_py_runs": onmt_runs,
                                   **{f"tern_{s}": tern_sps[s] for s in settings},
                                   **{f"tern_{s}_runs": tern_runs[s] for s in settings},
                                   **{f"ratio_{s}": tern_sps[s] / onmt_sps for s in settings}},
     "bleu": {"opennmt_py": bleu["onmt"], **{f"tern_{s}": bleu[f"tern.{s}"] for s in settings}}}
# Paired bootstrap (1,000 resamples, sacreBLEU's seed) of each tern output against OpenNMT-py's.
paired = json.load(open(f"{out}/paired_bs.json"))
r["paired_bs_vs_opennmt_py"] = {
    "opennmt_py": {m: {"score": paired[0][m]["score"], "ci": paired[0][m]["ci"]} for m in ("BLEU", "chrF2")},
    **{f"tern_{s}": {m: {"score": row[m]["score"], "ci": row[m]["ci"], "p_value": row[m]["p_value"]}
                     for m in ("BLEU", "chrF2")} for s, row in zip(settings, paired[1:])}}
json.dump(r, open(f"{out}/compare.json", "w"), indent=2)
print(f"\n{'':36}{'tern':>10}{'OpenNMT-py':>12}{'ratio':>8}{'BLEU':>8}")
print(f"{'train tokens/s (src+tgt)':36}{tern_tok:>10.0f}{onmt_tok:>12.0f}{tern_tok / onmt_tok:>7.2f}x")
names = {"default": f"translate sent/s (beam {beam})", "early_stop": "  --early-stop (OpenNMT-py's rule)",
         "int8": "  --early-stop --int8", "shortlist": "  --shortlist (Marian's, 100/100)",
         "shortlist_int8": "  --early-stop --int8 --shortlist"}
for s in settings:
    print(f"{names[s]:36}{tern_sps[s]:>10.1f}{onmt_sps:>12.1f}{tern_sps[s] / onmt_sps:>7.2f}x{bleu[f'tern.{s}']:>8.2f}")
print(f"{'OpenNMT-py BLEU':36}{'':>30}{bleu['onmt']:>8.2f}")
pb = r["paired_bs_vs_opennmt_py"]
print("paired bootstrap against OpenNMT-py (BLEU, chrF2 ± 95% interval; p < 0.05: the difference is significant):")
print(f"  {'OpenNMT-py':34}{pb['opennmt_py']['BLEU']['score']:>7.2f} ± {pb['opennmt_py']['BLEU']['ci']:.2f}"
      f"{pb['opennmt_py']['chrF2']['score']:>9.2f} ± {pb['opennmt_py']['chrF2']['ci']:.2f}")
for s in settings:
    t = pb[f"tern_{s}"]
    print(f"  {'tern ' + s:34}{t['BLEU']['score']:>7.2f} ± {t['BLEU']['ci']:.2f} (p {t['BLEU']['p_value']:.3f})"
          f"{t['chrF2']['score']:>9.2f} ± {t['chrF2']['ci']:.2f} (p {t['chrF2']['p_value']:.3f})")
where = "the GPU" if device == "cuda" else "the CPU, both with every core"
print(f"({sentences} test verses, batch {batch}, medians of {repeats} interleaved decoding rounds on {where}; BLEU "
      f"after {steps} training steps; details in {out}/compare.json)")
PY
