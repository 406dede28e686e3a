"""Word alignments for bench/guided_alignment.sh: aligner input, symmetrization and scoring, on Pharaoh "i-j" links
(source word i, target word j, from 0; words as str.split() splits the lines, the convention of tern prepare
--train-align and tern translate --alignment).

  alignments.py words IN OUT            lowercased words with punctuation stripped (the same word count a line, so
                                        the aligner's links index the original words)
  alignments.py gdfa FWD REV OUT        grow-diag-final-and of forward and reverse links (Koehn et al. 2003, as
                                        fast_align's atools -c grow-diag-final-and)
  alignments.py score REF HYP           precision, recall, F1 and AER of HYP's links against REF's (every link sure)
"""
import string
import sys


def words(src, out):
    strip = str.maketrans("", "", string.punctuation + "¡¿«»“”‘’")
    with open(src, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        for line in f:
            g.write(" ".join(w.lower().translate(strip) or w.lower() for w in line.split()) + "\n")


def links(line):
    return {tuple(int(x) for x in link.split("-")) for link in line.split()}


def grow_diag_final_and(fwd, rev):
    union, alignment = fwd | rev, fwd & rev
    neighbours = [(-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]
    src_done = {i for i, _ in alignment}
    tgt_done = {j for _, j in alignment}
    grew = True
    while grew:
        grew = False
        for i, j in sorted(alignment):
            for di, dj in neighbours:
                n = (i + di, j + dj)
                if n in union and n not in alignment and (n[0] not in src_done or n[1] not in tgt_done):
                    alignment.add(n)
                    src_done.add(n[0])
                    tgt_done.add(n[1])
                    grew = True
    for direction in (fwd, rev):  # final-and: unaligned words on both sides
        for i, j in sorted(direction):
            if i not in src_done and j not in tgt_done:
                alignment.add((i, j))
                src_done.add(i)
                tgt_done.add(j)
    return alignment


def gdfa(fwd_path, rev_path, out):
    with open(fwd_path) as f, open(rev_path) as r, open(out, "w") as g:
        for a, b in zip(f, r):
            g.write(" ".join(f"{i}-{j}" for i, j in sorted(grow_diag_final_and(links(a), links(b)))) + "\n")


def score(ref_path, hyp_path):
    with open(ref_path) as f:
        ref = [links(l) for l in f]
    with open(hyp_path) as f:
        hyp = [links(l.split(" ||| ")[-1]) for l in f]
    if len(ref) != len(hyp):
        sys.exit(f"alignments.py: {ref_path} has {len(ref)} lines but {hyp_path} has {len(hyp)}")
    both = sum(len(r & h) for r, h in zip(ref, hyp))
    n_ref, n_hyp = sum(map(len, ref)), sum(map(len, hyp))
    p, r = both / max(n_hyp, 1), both / max(n_ref, 1)
    f1 = 2 * p * r / max(p + r, 1e-12)
    print(f"precision {100 * p:.1f}  recall {100 * r:.1f}  F1 {100 * f1:.1f}  AER {100 * (1 - f1):.1f}  "
          f"({n_hyp} links against {n_ref})")


if __name__ == "__main__":
    commands = {"words": words, "gdfa": gdfa, "score": score}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
