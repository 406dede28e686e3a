#!/usr/bin/env python3
"""How often `tern translate --alignment` links a name to itself: a capitalised word of 3+ letters (punctuation
stripped) that occurs exactly once in a source line and once in its translation, spelt the same (Moses/Moisés does
not count; Aaron/Aarón does not; Israel/Israel does), should be linked i-j to that word. Prints the share linked by the
alignment and, as a floor, by a diagonal guess (target word j -> source word round(j * |src| / |hyp|)).

    awk 'NR % 10 == 0' work/bible/train.en | head -2500 > sample.en
    tern translate --checkpoint runs/bible/best.tern --alignment -i sample.en -o sample.aligned
    bench/alignment_names.py sample.en sample.aligned
"""
import re
import sys


def strip(word):
    return re.sub(r"^[\W_]+|[\W_]+$", "", word)


def main(source_path, aligned_path):
    with open(source_path, encoding="utf-8") as f:
        sources = f.read().split("\n")
    names = linked = diagonal = 0
    with open(aligned_path, encoding="utf-8") as f:
        for k, line in enumerate(f):
            hyp, sep, links = line.rstrip("\n").partition(" ||| ")
            if not sep:
                sys.exit(f"{aligned_path}:{k + 1}: no ' ||| ' (translate with --alignment)")
            src = [strip(w) for w in sources[k].split()]
            out = [strip(w) for w in hyp.split()]
            pairs = {tuple(map(int, p.split("-"))) for p in links.split()}
            for j, w in enumerate(out):
                if len(w) < 3 or not w[0].isupper() or out.count(w) != 1 or src.count(w) != 1:
                    continue
                i = src.index(w)
                names += 1
                linked += (i, j) in pairs
                diagonal += i == round(j * len(src) / len(out))
    if names == 0:
        sys.exit("no name occurs once in a source line and once in its translation")
    print(f"names {names}: linked by the alignment {linked} ({100 * linked / names:.1f}%), "
          f"by a diagonal guess {diagonal} ({100 * diagonal / names:.1f}%)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
