"""A corpus in parts, through the CLI: `prepare` with several files per side and with --threads gives the corpus of
one file; parts prepared separately with shared SentencePiece models train, listed in data.corpus, exactly as the one
file does (same losses); bad lists and mismatched parts are refused with their exit codes."""
import glob
import json
import shutil

import h5py
import numpy as np

from common import (check, check_same_training, finish, metrics, run, synthetic_parallel, tempdir, tern_job,
                    tiny_config, write)

EXIT_CONFIG, EXIT_DATA = 2, 4


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def same_datasets(a, b):
    x, y = datasets(a), datasets(b)
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


d = tempdir()
src, tgt = synthetic_parallel(900, seed=4)
vsrc, vtgt = synthetic_parallel(60, seed=5)
write(f"{d}/a.en", src), write(f"{d}/a.es", tgt), write(f"{d}/v.en", vsrc), write(f"{d}/v.es", vtgt)
common = ["--vocab-size", "60", "--valid-src", f"{d}/v.en", "--valid-tgt", f"{d}/v.es"]
run(["prepare", "--train-src", f"{d}/a.en", "--train-tgt", f"{d}/a.es", *common, "--threads", "1",
     "--out", f"{d}/whole.h5"])

# Several files a side, encoded in 3 threads: the same corpus.
for k, (b, e) in enumerate([(0, 400), (400, 900)]):
    write(f"{d}/p{k}.en", src[b:e]), write(f"{d}/p{k}.es", tgt[b:e])
run(["prepare", "--train-src", f"{d}/p0.en", f"{d}/p1.en", "--train-tgt", f"{d}/p0.es", f"{d}/p1.es", *common,
     "--threads", "3", "--out", f"{d}/files.h5"])
check(same_datasets(f"{d}/whole.h5", f"{d}/files.h5"), "prepare of 2 files a side in 3 threads = 1 file, 1 thread")

# Parts prepared one by one (as a job array would) with the whole's SentencePiece models.
with h5py.File(f"{d}/whole.h5", "r") as f:
    for side in ("src", "tgt"):
        open(f"{d}/{side}.model", "wb").write(f[f"vocab/{side}"][()].tobytes())
models = ["--spm-src", f"{d}/src.model", "--spm-tgt", f"{d}/tgt.model"]
run(["prepare", "--train-src", f"{d}/p0.en", "--train-tgt", f"{d}/p0.es", *common, *models, "--out", f"{d}/0.h5"])
run(["prepare", "--train-src", f"{d}/p1.en", "--train-tgt", f"{d}/p1.es", *models, "--out", f"{d}/1.h5"])

losses = {}
for name, corpus in [("whole", f"{d}/whole.h5"), ("parts", f"[{d}/0.h5, {d}/1.h5]")]:
    cfg = tiny_config(d, corpus, f"{d}/run_{name}", name=f"{name}.yaml")
    p = run(["train", cfg, "--set", "train.max_steps=12", "--set", "train.valid_every=6", "--no-progress"])
    rows = metrics(f"{d}/run_{name}")
    losses[name] = [(r.get("step"), r.get("train_loss"), r.get("valid_loss")) for r in rows]
    check("ready to train" in p.stderr and "resident memory" in p.stderr and "data loader:" in p.stderr,
          f"{name}: the log states startup time, resident memory and the loader's rate")
check(len(losses["whole"]) > 2 and losses["whole"] == losses["parts"],
      "training on the parts listed in data.corpus gives the losses of the one file, exactly")

# data.weights [2, 1]: part 0's sentences twice an epoch. The weighted sequence is part 0, part 0, part 1, so the run
# equals one on a corpus prepared from those three files (prepare reads its files one after the other), exactly; on
# two ranks it equals one rank with the same two shards.
run(["prepare", "--train-src", f"{d}/p0.en", f"{d}/p0.en", f"{d}/p1.en", "--train-tgt", f"{d}/p0.es", f"{d}/p0.es",
     f"{d}/p1.es", *common, *models, "--out", f"{d}/twice.h5"])
weighted = {}
for name, corpus, extra in [("twice", f"{d}/twice.h5", []),
                            ("weights", f"[{d}/0.h5, {d}/1.h5]", ["--set", "data.weights=[2, 1]"])]:
    cfg = tiny_config(d, corpus, f"{d}/run_{name}", name=f"{name}.yaml")
    p = run(["train", cfg, "--set", "train.max_steps=12", "--set", "train.valid_every=6", "--set", "data.shards=2",
             "--set", "train.log_every=1",
             *extra, "--no-progress"])
    weighted[name] = [(r.get("step"), r.get("train_loss"), r.get("valid_loss")) for r in metrics(f"{d}/run_{name}")]
check("0.h5 x2 (400 sentences), " in p.stderr and "1.h5 x1 (500 sentences): 1300 train sentences an epoch" in p.stderr,
      "the log states the weights and the epoch's sentences" + ("" if "x2 (400" in p.stderr else p.stderr[-400:]))
check(len(weighted["twice"]) > 2 and weighted["twice"] == weighted["weights"] and weighted["weights"] != losses["parts"],
      "data.weights [2, 1] trains exactly as a corpus holding part 0 twice")
run(["report", f"{d}/run_weights"])
md = open(f"{d}/run_weights/report/report.md").read()
check(json.load(open(f"{d}/run_weights/report/report.json"))["corpus"].get("weights") == [2, 1] and
      "| train (part 1, x2 in training) | 400 |" in md, "the report gives each part's weight")
cfg = tiny_config(d, f"[{d}/0.h5, {d}/1.h5]", f"{d}/run_weights2", name="weights2.yaml")
p = tern_job(["train", cfg, "--set", "train.max_steps=12", "--set", "train.valid_every=6", "--set", "data.weights=[2, 1]",
              "--set", "train.log_every=1",
              "--no-progress"], ranks=2)
check("reads train sentences [0, 400) [0, 250) of 900 (shard 0 of 2)" in p.stderr and
      "reads train sentences [250, 400) [400, 900) of 900 (shard 1 of 2)" in p.stderr,
      "each rank reads its range of the weighted sequence" + ("" if "[0, 250)" in p.stderr else p.stderr[-600:]))
check_same_training(f"{d}/run_weights2", f"{d}/run_weights", 12)
p = run(["train", cfg, "--set", "train.max_steps=14", "--set", "data.weights=[3, 1]", "--set", "data.shards=2", "--resume",
         "--no-progress"])
check("warning: data.weights is [3, 1] here and [2, 1] in " in p.stderr and "resumed from" in p.stderr,
      "resuming with other data.weights is allowed, with a warning" + ("" if "[3, 1] here" in p.stderr else p.stderr[-400:]))
for value, rule in [("[1]", "data.weights must have one entry a part of data.corpus (2 part(s)), got 1"),
                    ("[0, 1]", "data.weights entries must be whole numbers in [1, 1000] (got 0)"),
                    ("[2, 1001]", "data.weights entries must be whole numbers in [1, 1000] (got 1001)"),
                    ("[1.5, 1]", "data.weights entries must be an integer (got '1.5')"),
                    ("[a, 1]", "data.weights entries must be an integer (got 'a')"),
                    ("{a: 1}", "data.weights must be a list of integers (got a mapping)"),
                    ("[1, 1] --set data.lm_mode=stream", "data.weights repeats sentences of the training split")]:
    sets = [a for kv in f"data.weights={value}".split(" --set ") for a in ("--set", kv)]
    p = run(["train", cfg, *sets], expect=EXIT_CONFIG)
    check(rule in p.stderr, f"data.weights={value}: exit 2 with the rule ({p.stderr[-200:]!r})")

# The report shows each part's preparation statistics (it showed the first part's as the corpus's).
run(["report", f"{d}/run_parts"])
rep = json.load(open(f"{d}/run_parts/report/report.json"))["corpus"]
parts_train = [p["train"]["kept"] for p in rep.get("filter_stats_parts", [])]
md = open(f"{d}/run_parts/report/report.md").read()
check(parts_train == [400, 500] and "filter_stats" not in rep and "| train (part 2) | 500 |" in md,
      f"the report gives each part's statistics ({parts_train})")

# Parts prepared with other --max-tokens: translate's default source cap is the largest (it was the first part's).
run(["prepare", "--train-src", f"{d}/p1.en", "--train-tgt", f"{d}/p1.es", *models, "--max-tokens", "300",
     "--out", f"{d}/1long.h5"])
cfg = tiny_config(d, f"[{d}/0.h5, {d}/1long.h5]", f"{d}/run_long", name="long.yaml")
run(["train", cfg, "--set", "train.max_steps=2", "--no-progress"])
p = run(["translate", "--checkpoint", f"{d}/run_long/best.tern"], stdin=" ".join(src[:20]) + "\n")
check("truncated to 300" in p.stderr, f"the default source cap is the parts' largest --max-tokens ({p.stderr[-200:]!r})")

# evaluate --data takes the parts too: the same figures as on the one file.
ckpt = sorted(glob.glob(f"{d}/run_parts/ckpt_*.tern"))[-1]
evals = {}
for name, data in [("whole", [f"{d}/whole.h5"]), ("parts", [f"{d}/0.h5", f"{d}/1.h5"])]:
    run(["evaluate", "--checkpoint", ckpt, "--data", *data, "--split", "valid", "--beam", "2",
         "--json", f"{d}/eval_{name}.json"])
    e = json.load(open(f"{d}/eval_{name}.json"))
    e.pop("corpus", None), e.pop("corpus_parts", None)
    e.pop("overlap_with_train", None)  # prepare's count, known for a one-file corpus only
    for timing in ("seconds", "sentences_per_s"):
        e.get("translation", {}).pop(timing, None)
    evals[name] = json.dumps(e, sort_keys=True)
check(evals["whole"] == evals["parts"] and "bleu" in evals["whole"],
      "evaluate --data PART0 PART1 gives the perplexity, hypotheses and BLEU of the one file")

# Refused: an empty list, a list of lists, a missing part, a part with other vocabularies, --threads -1.
cfg = tiny_config(d, f"{d}/whole.h5", f"{d}/run_bad", name="bad.yaml")
p = run(["train", cfg, "--set", "data.corpus=[]"], expect=EXIT_CONFIG)
check("data.corpus must name an HDF5 corpus" in p.stderr, "an empty data.corpus list: exit 2 with the rule")
p = run(["train", cfg, "--set", f"data.corpus=[[{d}/0.h5]]"], expect=EXIT_CONFIG)
check("data.corpus entries must be paths" in p.stderr, "a nested list: exit 2 naming the key")
p = run(["train", cfg, "--set", f"data.corpus=[{d}/0.h5, {d}/nope.h5]"], expect=EXIT_DATA)
check("nope.h5: corpus file does not exist" in p.stderr, "a missing part: exit 4 naming it")
p = run(["train", cfg, "--set", f"data.corpus=[{d}/0.h5, {d}/1.h5, {d}/../{d.split('/')[-1]}/0.h5]"],
        expect=EXIT_DATA)
check("0.h5: listed twice as a part of the corpus (parts 1 and 3)" in p.stderr, "a part listed twice: exit 4")
shutil.copyfile(f"{d}/0.h5", f"{d}/copy.h5")  # a copy: another file, the same sentences
p = run(["train", cfg, "--set", f"data.corpus=[{d}/0.h5, {d}/1.h5, {d}/copy.h5]"], expect=EXIT_DATA)
check(f"copy.h5: was prepared from the same src text of the train split as {d}/0.h5 ({d}/p0.en and {d}/p0.en" in
      p.stderr and
      "its sentences would be read twice" in p.stderr, f"a copy of a part: exit 4 naming both ({p.stderr[-300:]!r})")
p = run(["evaluate", "--checkpoint", ckpt, "--data", f"{d}/0.h5", f"{d}/copy.h5", "--no-translate"], expect=EXIT_DATA)
check("its sentences would be read twice" in p.stderr, "evaluate --data with a copy of a part: exit 4")
# Every part of a job array given the same --valid-src: the valid sentences would count twice in validation.
run(["prepare", "--train-src", f"{d}/p1.en", "--train-tgt", f"{d}/p1.es", *common, *models, "--out", f"{d}/1v.h5"])
p = run(["train", cfg, "--set", f"data.corpus=[{d}/0.h5, {d}/1v.h5]"], expect=EXIT_DATA)
check(f"1v.h5: was prepared from the same src text of the valid split as {d}/0.h5 ({d}/v.en and {d}/v.en" in p.stderr,
      f"parts sharing one valid text: exit 4 naming both ({p.stderr[-300:]!r})")
run(["prepare", "--train-src", f"{d}/p1.en", "--train-tgt", f"{d}/p1.es", "--vocab-size", "40",
     "--out", f"{d}/other.h5"])
p = run(["train", cfg, "--set", f"data.corpus=[{d}/0.h5, {d}/other.h5]"], expect=EXIT_DATA)
check("other.h5: its" in p.stderr and "must share their SentencePiece models" in p.stderr,
      "a part with other vocabularies: exit 4 naming it and the fix")
p = run(["prepare", "--train-src", f"{d}/p1.en", "--train-tgt", f"{d}/p1.es", "--threads", "-1",
         "--out", f"{d}/t.h5"], expect=EXIT_CONFIG)
check("--threads must be in [0, 1024]" in p.stderr, "prepare --threads -1: exit 2 with the rule")
p = run(["prepare", "--train-src", f"{d}/p0.en", f"{d}/p1.en", "--train-tgt", f"{d}/p0.es",
         "--out", f"{d}/t.h5"], expect=EXIT_CONFIG)
check("--train-src has 2 file(s) but --train-tgt has 1" in p.stderr, "unpaired file lists: exit 2")
# Tagged back-translation (Caswell et al. 2019): the first part's models keep "<BT>" whole (--user-symbols), a part of
# back-translated pairs tagged "<BT> ..." reuses them (--vocab-from), and each of its sources holds the tag as one token.
import sentencepiece as spm  # noqa: E402

run(["prepare", "--train-src", f"{d}/p0.en", "--train-tgt", f"{d}/p0.es", "--vocab-size", "60", "--user-symbols",
     "<BT>", "<2es>", "--out", f"{d}/tagged0.h5"])
write(f"{d}/bt.en", ["<BT> " + l for l in open(f"{d}/p1.en").read().splitlines()])
run(["prepare", "--train-src", f"{d}/bt.en", "--train-tgt", f"{d}/p1.es", "--vocab-from", f"{d}/tagged0.h5",
     "--out", f"{d}/bt.h5"])
with h5py.File(f"{d}/bt.h5", "r") as f:
    sp = spm.SentencePieceProcessor(model_proto=f["vocab/src"][:].tobytes())
    tag = sp.piece_to_id("<BT>")
    off, tok = f["train/src/offsets"][:], f["train/src/tokens"][:]
    counts = [int((tok[off[i]:off[i + 1]] == tag).sum()) for i in range(len(off) - 1)]
check(tag > 3 and sp.is_control(tag) is False and sp.id_to_piece(tag) == "<BT>" and set(counts) == {1},
      f"--user-symbols: every back-translated source holds <BT> as one token (id {tag}, counts {set(counts)})")
for symbols, needle in ((["<a b>"], "contains U+0020"), (["<BT>", "<BT>"], "'<BT>' is given twice"),
                        (["<a,b>"], "contains a comma")):
    p = run(["prepare", "--train-src", f"{d}/p0.en", "--train-tgt", f"{d}/p0.es", "--user-symbols", *symbols,
             "--out", f"{d}/bad.h5"], expect=EXIT_CONFIG)
    check(needle in p.stderr and not glob.glob(f"{d}/bad.h5*"), f"--user-symbols {symbols}: exit 2 ({p.stderr[-120:]!r})")
p = run(["prepare", "--train-src", f"{d}/bt.en", "--train-tgt", f"{d}/p1.es", "--vocab-from", f"{d}/tagged0.h5",
         "--user-symbols", "<BT>", "--out", f"{d}/bad.h5"], expect=EXIT_CONFIG)
check("reuse models as they are" in p.stderr, "--user-symbols with --vocab-from: exit 2")
finish()
