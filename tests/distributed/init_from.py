"""train.init_from (fine-tuning): a fresh run on new data prepared with `prepare --vocab-from` starts from a
checkpoint's parameters (its weight average when it has one), under mpirun too (every rank holds them); another model
or vocabulary, a missing file and an averaged-with-another-corpus prepare are refused with their messages; resuming
the new run ignores it; --vocab-from refuses a corpus of the other kind."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=600)
cfg = tiny_config(d, corpus, "X")


def train(run_dir, steps, *sets, ranks=1, expect=0, resume=False):
    args = ["train", cfg, "--no-progress", "--set", f"train.run_dir={run_dir}", "--set", f"train.max_steps={steps}",
            "--set", "train.threads=1", *(["--resume", "auto"] if resume else [])]
    for s in sets:
        args += ["--set", s]
    p = tern_job(args, ranks)
    check(p.returncode == expect, f"train {run_dir} {' '.join(sets)} exits {expect} (got {p.returncode})")
    return p


def ppl(ckpt, data, *extra):
    out = run(["evaluate", "--checkpoint", ckpt, "--data", data, "--split", "test", "--no-translate", *extra]).stdout
    return json.loads(out)["perplexity"]["ppl_per_token"]


train(f"{d}/base", 20)
train(f"{d}/base_ema", 20, "train.ema_decay=0.8")
base, base_ema = f"{d}/base/ckpt_step00000020.tern", f"{d}/base_ema/ckpt_step00000020.tern"

# New data with the base corpus's vocabularies.
src, tgt = synthetic_parallel(300, seed=5)
write(f"{d}/new.en", src)
write(f"{d}/new.es", tgt)
new = f"{d}/new.h5"
run(["prepare", "--vocab-from", corpus, "--train-src", f"{d}/new.en", "--train-tgt", f"{d}/new.es",
     "--valid-fraction", "0.1", "--test-fraction", "0.1", "--out", new])

# One step at a negligible learning rate: the fine-tuned model is the base model (its average with train.ema_decay).
tiny = ("optim.lr=1e-9", f"data.corpus={new}")
train(f"{d}/ft", 1, f"train.init_from={base}", *tiny)
train(f"{d}/ft_ema", 1, f"train.init_from={base_ema}", *tiny)
train(f"{d}/scratch", 1, *tiny)
b, f, s = ppl(base, new), ppl(f"{d}/ft/ckpt_step00000001.tern", new), ppl(f"{d}/scratch/ckpt_step00000001.tern", new)
check(abs(f - b) / b < 1e-4 and abs(s - b) / b > 0.05,
      f"the fine-tuned run starts from the base model (ppl {f:.4f} vs base {b:.4f}; from scratch {s:.4f})")
e, raw = ppl(base_ema, new), ppl(base_ema, new, "--no-ema")
fe = ppl(f"{d}/ft_ema/ckpt_step00000001.tern", new)
check(abs(fe - e) / e < 1e-4 and abs(raw - e) / e > 1e-3,
      f"it starts from a checkpoint's weight average when it has one (ppl {fe:.4f} vs {e:.4f}; weights {raw:.4f})")
log = open(f"{d}/ft/train.log").read()
env = json.load(open(f"{d}/ft/environment.json"))
steps = [r["step"] for r in metrics(f"{d}/ft")]
check(f"initialized from {base} (step 20)" in log and env["initialized_from"].startswith(f"{base} (run ")
      and env["initialized_from"].endswith(", step 20)") and steps[0] == 1,
      f"train.log and environment.json say where it started; its steps count from 1 ({steps})")

# Every rank holds the parameters (rank 0 reads the file): train.check_sync_every compares them after each step.
p = train(f"{d}/ft2", 2, f"train.init_from={base}", *tiny, "data.shards=2", "train.check_sync_every=1", ranks=2)
f2 = ppl(f"{d}/ft2/ckpt_step00000002.tern", new)
check(abs(f2 - b) / b < 1e-4, f"2 ranks start from the base model too (ppl {f2:.4f} vs {b:.4f})")

# Resuming the fine-tuned run continues from its own checkpoint and never reads train.init_from again.
train(f"{d}/ft", 3, f"train.init_from={d}/gone.tern", *tiny, resume=True)  # a fresh start would fail: no such file
env = json.load(open(f"{d}/ft/environment.json"))
check(metrics(f"{d}/ft")[-1]["step"] == 3 and env["initialized_from"].startswith(f"{base} (run "),
      f"a resume ignores train.init_from and keeps saying where the run started ({env['initialized_from']})")

# Refusals: another model, another vocabulary, a missing or non-checkpoint file; dropout may differ.
p = train(f"{d}/bad1", 1, f"train.init_from={base}", *tiny, "model.hidden=48", expect=5)
check("train.init_from needs the model it was trained with: model.hidden is 32 there and 48 here" in p.stderr,
      f"another model refused ({p.stderr.strip()[-200:]})")
train(f"{d}/drop", 1, f"train.init_from={base}", *tiny, "model.dropout=0.3")
run(["prepare", "--train-src", f"{d}/new.en", "--train-tgt", f"{d}/new.es", "--valid-fraction", "0.1",
     "--vocab-size", "50", "--out", f"{d}/other.h5"])
p = train(f"{d}/bad2", 1, f"train.init_from={base}", "optim.lr=1e-9", f"data.corpus={d}/other.h5", expect=5)
check("was trained with a different src vocabulary than" in p.stderr and "tern prepare --vocab-from" in p.stderr,
      f"another vocabulary refused with the way out ({p.stderr.strip()[-200:]})")
p = train(f"{d}/bad3", 1, f"train.init_from={d}/gone.tern", *tiny, expect=5)
check("gone.tern" in p.stderr, f"a missing file refused ({p.stderr.strip()[-160:]})")
p = train(f"{d}/bad4", 1, f"train.init_from={new}", *tiny, expect=5)
check("new.h5" in p.stderr and "HDF5" in p.stderr, f"a corpus as init_from refused ({p.stderr.strip()[-160:]})")
check(not any(os.path.exists(f"{d}/bad{k}/ckpt_step00000001.tern") for k in range(1, 5)), "no refused run trained")

# --vocab-from: a parallel corpus needs a parallel one (a monolingual one may take a side of a parallel one: lm_fusion),
# and it takes no other SentencePiece option.
write(f"{d}/mono.txt", src)
run(["prepare", "--vocab-from", corpus, "--train-text", f"{d}/mono.txt", "--out", f"{d}/mono.h5"])
p = run(["prepare", "--vocab-from", f"{d}/mono.h5", "--train-src", f"{d}/new.en", "--train-tgt", f"{d}/new.es", "--out",
         f"{d}/par.h5"], expect=4)
check("is a monolingual corpus; this parallel corpus needs the vocabularies of a parallel one" in p.stderr,
      f"--vocab-from of the other kind refused ({p.stderr.strip()[-160:]})")
p = run(["prepare", "--vocab-from", corpus, "--vocab-side", "both", "--train-text", f"{d}/mono.txt", "--out",
         f"{d}/mono2.h5"], expect=2)
check("--vocab-side must be src or tgt (got 'both')" in p.stderr, f"a bad --vocab-side ({p.stderr.strip()[-160:]})")
p = run(["prepare", "--vocab-from", corpus, "--vocab-side", "src", "--train-src", f"{d}/new.en", "--train-tgt",
         f"{d}/new.es", "--out", f"{d}/par2.h5"], expect=2)
check("--vocab-side picks the side of a parallel --vocab-from corpus" in p.stderr,
      f"--vocab-side for a parallel corpus ({p.stderr.strip()[-160:]})")
p = run(["prepare", "--vocab-from", f"{d}/mono.h5", "--vocab-side", "src", "--train-text", f"{d}/mono.txt", "--out",
         f"{d}/mono3.h5"], expect=2)
check("is a monolingual corpus, with no sides to pick from" in p.stderr,
      f"--vocab-side with a monolingual --vocab-from ({p.stderr.strip()[-160:]})")
p = run(["prepare", "--vocab-from", corpus, "--joint-vocab", "--train-src", f"{d}/new.en", "--train-tgt",
         f"{d}/new.es", "--out", f"{d}/j.h5"], expect=2)
check("--vocab-from takes the corpus's models as they are" in p.stderr, "--vocab-from with --joint-vocab refused")
finish()
