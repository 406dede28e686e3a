"""tern translate -i FILE -o FILE gives what stdin/stdout gives; a missing input or an unwritable output is refused
with its exit code and leaves no partial file; --no-unk decodes; --checkpoint A B decodes as an ensemble."""
import os

from common import *  # noqa: F403

d = tempdir()
corpus = make_corpus(d, n=600)
cfg = tiny_config(d, corpus, f"{d}/run")
run(["train", cfg, "--no-progress", "--set", "train.max_steps=10"])
ckpt = f"{d}/run/ckpt_step00000010.tern"
src = "the king said unto him .\nand they went into the city .\nlight\n"
write(f"{d}/in.txt", src.splitlines())
piped = run(["translate", "--checkpoint", ckpt], stdin=src).stdout
run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "-o", f"{d}/out.txt"])
check(open(f"{d}/out.txt").read() == piped and len(piped.splitlines()) == 3, "-i/-o equals stdin/stdout")
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/missing.txt"], expect=4)
check("missing.txt" in p.stderr, f"missing input named ({p.stderr.strip()[-120:]})")
p = run(["translate", "--checkpoint", ckpt, "-i", f"{d}/in.txt", "-o", f"{d}/nodir/out.txt"], expect=7)
check("nodir/out.txt" in p.stderr and not os.path.exists(f"{d}/nodir"), "unwritable output refused")
nounk = run(["translate", "--checkpoint", ckpt, "--no-unk", "-i", f"{d}/in.txt"]).stdout
check(len(nounk.splitlines()) == 3 and "\u2047" not in nounk, "--no-unk output has no unknown-piece mark")
# Ensembles: A A decodes as A; A B decodes (and differs from A on some line); mixed vocabularies are refused.
run(["train", cfg, "--no-progress", "--set", "train.max_steps=20", "--set", f"train.run_dir={d}/run2",
     "--set", "train.seed=9"])
b = f"{d}/run2/ckpt_step00000020.tern"
aa = run(["translate", "--checkpoint", ckpt, ckpt, "-i", f"{d}/in.txt"]).stdout
check(aa == piped, "an ensemble of a model with itself equals the model")
ab = run(["translate", "--checkpoint", ckpt, b, "-i", f"{d}/in.txt"]).stdout
check(len(ab.splitlines()) == 3, f"an ensemble of two checkpoints translates ({ab.strip()!r})")
os.makedirs(f"{d}/v2")
corpus2 = make_corpus(f"{d}/v2", n=300, vocab=50)
run(["train", tiny_config(d, corpus2, f"{d}/other", name="o.yaml"), "--no-progress", "--set", "train.max_steps=10"])
p = run(["translate", "--checkpoint", ckpt, f"{d}/other/ckpt_step00000010.tern", "-i", f"{d}/in.txt"], expect=5)
check("its vocabularies differ" in p.stderr, f"mixed vocabularies refused ({p.stderr.strip()[-160:]})")
finish()
