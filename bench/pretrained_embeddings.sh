#!/usr/bin/env bash
# Pretrained embeddings on the Bible (OpenNMT-py src_embeddings / tgt_embeddings and freeze_word_vecs_*, Marian
# --embedding-vectors and --embedding-fix-*): word2vec vectors of the corpus's pieces (bench/word2vec_pieces.py,
# gensim's skip-gram) start the embedding tables of configs/bible.yaml, then bench/ablation.sh trains and tests each
# variant (test split, beam 5, paired bootstrap against the first). The source vectors read the King James training
# split and the World English Bible's verses of the same books (a second English text: monolingual data the
# translation model never sees; Debian's sword-text-web); the target vectors read the Reina-Valera training split only.
# Controls: source vectors of the King James split alone (no second text), and random vectors of the trained ones'
# standard deviation (is it the vectors, or only their smaller scale than the N(0, 1) start?).
#   bench/pretrained_embeddings.sh      (STEPS=800: ~55 min on 2 cores; needs gensim: pip install gensim)
set -euo pipefail
cd "$(dirname "$0")/.."
TERN=${TERN:-build/cli/tern}
WORK=work/bible
OUT=${OUT:-runs/pretrained-embeddings-$(date +%Y%m%d-%H%M%S)}
[ -f "$WORK/bible.h5" ] || { echo "bench/pretrained_embeddings.sh: $WORK/bible.h5 is missing: run scripts/run_bible.sh first" >&2; exit 4; }
[ ! -e "$OUT" ] || { echo "bench/pretrained_embeddings.sh: $OUT exists: give another OUT" >&2; exit 7; }
mkdir -p "$OUT"
python3 scripts/bible_corpus.py --src-module engWEB2015eb --out "$OUT/web" > /dev/null
cat "$WORK/train.en" "$OUT/web/train.en" | "$TERN" encode --corpus "$WORK/bible.h5" --side src -o "$OUT/src.pieces"
"$TERN" encode --corpus "$WORK/bible.h5" --side tgt -i "$WORK/train.es" -o "$OUT/tgt.pieces"
dim=$(sed -n 's/^  embedding: *\([0-9]*\).*/\1/p' configs/bible.yaml)  # model.embedding
"$TERN" encode --corpus "$WORK/bible.h5" --side src -i "$WORK/train.en" -o "$OUT/kjv.pieces"
for v in src tgt kjv; do python3 bench/word2vec_pieces.py "$OUT/$v.pieces" "$OUT/$v.vec" --dim "$dim"; done
for v in src tgt; do python3 bench/word2vec_pieces.py "$OUT/$v.pieces" "$OUT/${v}_random.vec" --dim "$dim" --random; done
src="train.src_embeddings=$OUT/src.vec" tgt="train.tgt_embeddings=$OUT/tgt.vec"
OUT="$OUT/runs" TERN="$TERN" bench/ablation.sh random "" src "$src" both "$src $tgt" \
  frozen "$src $tgt train.freeze_embeddings=both" kjv "train.src_embeddings=$OUT/kjv.vec" \
  src_random "train.src_embeddings=$OUT/src_random.vec" \
  both_random "train.src_embeddings=$OUT/src_random.vec train.tgt_embeddings=$OUT/tgt_random.vec"
