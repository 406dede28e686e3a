"""The corpus layout documented in docs/corpus_format.md, read with h5py as a user would."""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=300)
with h5py.File(corpus, "r") as f:
    a = f.attrs
    check(a["format"] in (b"tern-corpus", "tern-corpus") and int(a["format_version"]) == 2, "format attributes")
    check(set(f.keys()) == {"train", "valid", "test", "vocab"}, f"groups {sorted(f.keys())}")
    total = 0
    for split in ("train", "valid", "test"):
        n = int(f[split].attrs["num_sentences"])
        total += n
        for side in ("src", "tgt"):
            off, tok = f[f"{split}/{side}/offsets"], f[f"{split}/{side}/tokens"]
            check(off.dtype == np.int64 and tok.dtype == np.int32, f"{split}/{side} dtypes")
            check(off.shape == (n + 1,) and off[0] == 0 and off[-1] == tok.shape[0], f"{split}/{side} offsets")
            check(int(f[f"{split}/{side}"].attrs["num_tokens"]) == tok.shape[0], f"{split}/{side} num_tokens")
            check(tok.fletcher32 and tok.chunks is not None, f"{split}/{side} chunked with checksums")
            vs = int(f["vocab/" + side].attrs["vocab_size"])
            check(tok[:].max() < vs and tok[:].min() >= 0, f"{split}/{side} ids inside vocabulary")
    check(total == 300, "all sentences present")
    # Sentence 7 of train, decoded with the stored SentencePiece model, is a line of the input.
    import sentencepiece as spm  # noqa
    off = f["train/tgt/offsets"]
    ids = f["train/tgt/tokens"][off[7]:off[8]].tolist()
    sp = spm.SentencePieceProcessor(model_proto=f["vocab/tgt"][:].tobytes())
    check(sp.decode(ids) in open(f"{d}/train.es").read().splitlines(), "stored vocabulary decodes a stored sentence")
    # Format 2: every sentence's input line number; here all splits come from train.es by fraction.
    raw = open(f"{d}/train.es").read().splitlines()
    lines = f["train/lines"][:]
    check(lines.dtype == np.int64 and lines.shape == (int(f["train"].attrs["num_sentences"]),)
          and all(np.diff(lines) > 0) and int(f["train"].attrs["source_lines"]) == len(raw), "train/lines layout")
    check(sp.decode(ids) == raw[lines[7] - 1], "sentence 7 is the input line train/lines[7] names")
finish()
