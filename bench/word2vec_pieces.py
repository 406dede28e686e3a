#!/usr/bin/env python3
"""word2vec (gensim's skip-gram) vectors of the pieces of a text written by `tern encode`, in word2vec's text format
(a header "count dim", then "piece v1 ... vdim" a line): what train.src_embeddings / tgt_embeddings read.
    python3 bench/word2vec_pieces.py PIECES OUT.vec --dim 256 [--epochs 10] [--window 5] [--seed 1] [--random]
One worker thread, so that the same text and seed give the same vectors (gensim's own rule). --random (a control)
writes, for the same pieces, random normal vectors with the standard deviation of the trained ones instead."""
import argparse
import sys

try:
    from gensim.models import Word2Vec
except ImportError:
    sys.exit("bench/word2vec_pieces.py: needs gensim (pip install gensim)")


class Lines:
    def __init__(self, path):
        self.path = path

    def __iter__(self):
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                yield line.split()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("pieces")
    ap.add_argument("out")
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--random", action="store_true")
    a = ap.parse_args()
    model = Word2Vec(Lines(a.pieces), vector_size=a.dim, window=a.window, min_count=1, sg=1, epochs=a.epochs,
                     seed=a.seed, workers=1)
    if a.random:
        import numpy as np
        rng = np.random.default_rng(a.seed)
        model.wv.vectors[:] = rng.normal(0.0, model.wv.vectors.std(), model.wv.vectors.shape)
    model.wv.save_word2vec_format(a.out, binary=False)
    print(f"{a.out}: {len(model.wv)} vectors of {a.dim}", file=sys.stderr)


if __name__ == "__main__":
    main()
