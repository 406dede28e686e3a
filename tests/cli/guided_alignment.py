"""Guided alignment (Marian --guided-alignment) through the CLI: `tern prepare --train-align` stores word alignments
(Pharaoh i-j links) as subword links, `train.guided_alignment_weight` trains the attention towards them (logged, in
metrics.jsonl, resumed bitwise, the same under mpirun -np 2 as one rank with two shards), and the attention of a
guided model follows the reference links on held-out pairs (translate --score-target --alignment) far better than
that of the same model trained without it. Bad alignment files, a corpus without alignments, a language model and
bad values are refused with the file, line or key, the rule and the value; nothing is written."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403


def reference_links(src):
    """The synthetic pairs' true alignment: target words are the source words reversed, then the final '.'."""
    n = len(src.split()) - 1
    return " ".join([f"{i}-{n - 1 - i}" for i in range(n)] + [f"{n}-{n}"])


def link_f1(reference_file, translate_out):
    ref = [{tuple(map(int, l.split("-"))) for l in line.split()} for line in open(reference_file)]
    hyp = [{tuple(map(int, l.split("-"))) for l in line.split(" ||| ")[-1].split()} for line in translate_out.splitlines()]
    check(len(ref) == len(hyp), f"one alignment a line ({len(hyp)} for {len(ref)})")
    both = sum(len(r & h) for r, h in zip(ref, hyp))
    p, r = both / max(1, sum(map(len, hyp))), both / max(1, sum(map(len, ref)))
    return 2 * p * r / max(p + r, 1e-9), r


d = tempdir()
src, tgt = synthetic_parallel(600)
write(f"{d}/train.en", src)
write(f"{d}/train.es", tgt)
write(f"{d}/train.al", [reference_links(s) for s in src])
prep = ["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--valid-fraction", "0.1",
        "--vocab-size", "60"]
p = run(prep + ["--train-align", f"{d}/train.al", "--out", f"{d}/c.h5"])
check(re.search(r"train: \d+ subword links from --train-align; 0 of \d+ pairs without any", p.stderr) is not None,
      f"prepare reports the links it stored ({p.stderr[-400:]})")
run(prep + ["--out", f"{d}/plain.h5"])
# The corpus: the same pieces as without alignments, and each pair's links (a held-out pair's too: --valid-fraction
# moves whole records) within its lengths, every target token of a word linked.
import h5py  # noqa: E402
with h5py.File(f"{d}/c.h5") as a, h5py.File(f"{d}/plain.h5") as b:
    check(a.attrs["alignments"] == 1 and "alignments" not in b.attrs, "the corpus records that it has alignments")
    for key in ("train/src/tokens", "train/tgt/tokens", "valid/src/tokens", "valid/tgt/tokens"):
        check((a[key][:] == b[key][:]).all(), f"{key}: the same pieces as without --train-align")
    for split in ("train", "valid"):
        so, to, lo = (a[f"{split}/{s}/offsets"][:] for s in ("src", "tgt", "align"))
        links = a[f"{split}/align/tokens"][:]
        ok = True
        for i in range(len(lo) - 1):
            pairs = links[lo[i]:lo[i + 1]].reshape(-1, 2)
            ok = ok and len(pairs) > 0 and (pairs[:, 0] < so[i + 1] - so[i]).all()
            ok = ok and set(pairs[:, 1]) == set(range(to[i + 1] - to[i]))
        check(ok, f"{split}: every pair has links within its lengths, and every target token is linked")
held_src, held_tgt = synthetic_parallel(40, seed=7)
write(f"{d}/held.en", held_src)
write(f"{d}/held.es", held_tgt)
write(f"{d}/held.al", [reference_links(s) for s in held_src])

# Training with it: logged, in metrics.jsonl, resumed bitwise.
text = TINY_CONFIG.replace("valid_every: 10", "valid_every: 0")
log = check_resumes_bitwise(d, f"{d}/c.h5", text, "guided", ["train.guided_alignment_weight=1.0"])
check("guided alignment: weight 1, cost ce" in log, f"the log names guided alignment ({log[-600:]})")
check(" align " in log, "the step lines report the alignment cost")
rows = [r for r in metrics(f"{d}/guided") if "train_loss" in r]
check(len(rows) == 20 and all(r["train_align"] > 0 for r in rows), "metrics.jsonl has the alignment cost a step")

# The attention follows the links: guided against unguided, the same model, seed and steps (forced decoding of the
# held-out references, links from the attention).
f1 = {}
for name, weight in [("plain", 0), ("strong", 1.0)]:
    cfg = tiny_config(d, f"{d}/c.h5", f"{d}/{name}", text=text, name=f"{name}.yaml")
    run(["train", cfg, "--no-progress", "--set", "train.max_steps=100", "--set",
         f"train.guided_alignment_weight={weight}"])
    out = run(["translate", "--checkpoint", f"{d}/{name}/ckpt_step00000100.tern", "-i", f"{d}/held.en",
               "--score-target", f"{d}/held.es", "--alignment"]).stdout
    f1[name] = link_f1(f"{d}/held.al", out)
cost = [r["train_align"] for r in metrics(f"{d}/strong") if "train_align" in r]
check(len(cost) == 20 and sum(cost[-5:]) < 0.85 * sum(cost[:5]), f"the alignment cost falls ({cost})")
check(all("train_align" not in r for r in metrics(f"{d}/plain")), "without guided alignment no cost is logged")
check(f1["strong"][0] > f1["plain"][0] + 0.2 and f1["strong"][1] > 0.8,
      f"guided attention matches the reference links far better (F1, recall: {f1})")
# mse trains too, with input feeding (the stepped decoder's attention).
_, _, log = train_variant(d, f"{d}/c.h5", text, "mse", ["train.guided_alignment_weight=0.5",
                                                         "train.guided_alignment_cost=mse", "model.input_feeding=true"])
check("cost mse" in log and [r for r in metrics(f"{d}/mse") if "train_loss" in r][-1]["train_align"] > 0,
      "mse with input feeding trains")

# Two ranks under mpirun equal one rank with two shards.
cfg = tiny_config(d, f"{d}/c.h5", f"{d}/one", text=text, name="one.yaml")
sets = ["--no-progress", "--set", "train.max_steps=6", "--set", "train.log_every=1", "--set",
        "train.guided_alignment_weight=1.0", "--set", "data.shards=2"]
run(["train", cfg] + sets)
cfg2 = tiny_config(d, f"{d}/c.h5", f"{d}/two", text=text, name="two.yaml")
p = tern_job(["train", cfg2] + sets, ranks=2)
check(p.returncode == 0, f"mpirun -np 2 trains with guided alignment (exit {p.returncode})")
check_same_training(f"{d}/two", f"{d}/one", 6, tol=1e-5)

# Refusals of prepare: exit 2 (usage) or 4 (data), the file, line, rule and value; no corpus written.
bad = {"count": [f"{d}/train.al", f"{d}/train.al"]}
lines = open(f"{d}/train.al").read().splitlines()
for name, content in [("short", lines[:-1]), ("syntax", ["0:1"] + lines[1:]), ("source", ["40-0"] + lines[1:]),
                      ("target", ["0-40"] + lines[1:]), ("negative", ["-1-0"] + lines[1:]),
                      ("huge", ["12345678901234-0"] + lines[1:])]:
    write(f"{d}/{name}.al", content)
    bad[name] = [f"{d}/{name}.al"]
for name, needle, code in [
        ("count", "--train-align has 2 file(s) but --train-src has 1", 2),
        ("short", f"{d}/train.en has 600 lines but {d}/short.al has 599 lines", 4),
        ("syntax", f"{d}/syntax.al:1: alignment link '0:1' is not of the form i-j", 4),
        ("source", f"{d}/source.al:1: alignment link '40-0' names source word 40, but the source line has", 4),
        ("target", f"{d}/target.al:1: alignment link '0-40' names target word 40, but the target line has", 4),
        ("negative", f"{d}/negative.al:1: alignment link '-1-0' is not of the form i-j", 4),
        ("huge", f"{d}/huge.al:1: alignment link '12345678901234-0' names source word 12345678901234", 4)]:
    p = run(prep + ["--train-align", *bad[name], "--out", f"{d}/never_{name}.h5"], expect=code)
    check(needle in p.stderr, f"{name}: the refusal says {needle!r} ({p.stderr.strip()[-300:]})")
    check(not os.path.exists(f"{d}/never_{name}.h5"), f"{name}: no corpus written")
# Windows line ends and repeated links are read as fast_align's output: the same corpus.
with open(f"{d}/crlf.al", "w", newline="") as f:
    f.write("".join(f"{l} {l.split()[0]}\r\n" for l in lines))
run(prep + ["--train-align", f"{d}/crlf.al", "--out", f"{d}/crlf.h5"])
with h5py.File(f"{d}/c.h5") as a, h5py.File(f"{d}/crlf.h5") as b:
    check((a["train/align/tokens"][:] == b["train/align/tokens"][:]).all(), "CRLF and repeated links: the same links")
write(f"{d}/text.txt", src)
p = run(["prepare", "--train-text", f"{d}/text.txt", "--train-align", f"{d}/train.al", "--out", f"{d}/never.h5"],
        expect=2)
check("--train-align links the words of parallel pairs" in p.stderr, f"monolingual: {p.stderr.strip()[-200:]}")

# Refusals of train: exit 2, the key, the rule and the value; no run directory.
lm_text = TINY_CONFIG.replace("model: {cell: lstm", "model: {type: lm, cell: lstm").replace(", attention: general", "")
for name, corpus, cfg_text, sets, needle in [
        ("no_links", f"{d}/plain.h5", text, ["train.guided_alignment_weight=0.1"],
         f"train.guided_alignment_weight 0.1 needs word alignments, but data.corpus {d}/plain.h5 has none"),
        ("lm", f"{d}/c.h5", lm_text, ["train.guided_alignment_weight=0.1"],
         "train.guided_alignment_weight guides the attention of a translation model: it needs model.type seq2seq "
         "(got lm)"),
        ("range", f"{d}/c.h5", text, ["train.guided_alignment_weight=-1"],
         "train.guided_alignment_weight must be in [0, 100] (0: off) (got -1)"),
        ("cost", f"{d}/c.h5", text, ["train.guided_alignment_weight=0.1", "train.guided_alignment_cost=mult"],
         "train.guided_alignment_cost must be ce or mse (got mult)")]:
    cfg = tiny_config(d, corpus, f"{d}/never_{name}", text=cfg_text, name=f"never_{name}.yaml")
    p = run(["train", cfg, "--no-progress"] + [x for s in sets for x in ("--set", s)], expect=2)
    check(needle in p.stderr, f"{name}: the refusal says {needle!r} ({p.stderr.strip()[-300:]})")
    check(not os.path.exists(f"{d}/never_{name}/ckpt_step00000010.tern"), f"{name}: nothing trained")

# A corpus in parts: all with alignments or none.
cfg = tiny_config(d, f"{d}/c.h5", f"{d}/never_mixed", text=text, name="mixed.yaml").replace("mixed", "mixed")
with open(cfg, "w") as f:
    f.write(text.replace("CORPUS", f"[{d}/c.h5, {d}/plain.h5]").replace("RUN", f"{d}/never_mixed"))
p = run(["train", cfg, "--no-progress"], expect=4)
check("parts of one corpus must all have them" in p.stderr, f"mixed parts: {p.stderr.strip()[-300:]}")
print("guided_alignment: ok")
finish()
