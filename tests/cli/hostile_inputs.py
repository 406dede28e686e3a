"""Hostile and unlucky inputs (issue 10): no silent wrong score, no lost checkpoint, the documented exit code for each
kind of error, a message that names the file/key/value, and nothing left behind."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

EXIT_CONFIG, EXIT_DATA, EXIT_CHECKPOINT, EXIT_FILE = 2, 4, 5, 7
d = tempdir()


def refused(args, code, needles, what, **kw):
    p = run(args, expect=None, **kw)
    missing = [n for n in ([needles] if isinstance(needles, str) else needles) if n not in p.stderr]
    check(p.returncode == code and not missing and "Traceback" not in p.stderr and "Exception raised from" not in p.stderr,
          f"{what}: exit {p.returncode} (want {code}); message {p.stderr.strip()[-300:]!r}")
    return p


# A corpus whose test split loses lines to prepare (an empty line and an over-long one), so that sentence i of the
# split is not line i of the raw test files.
src, tgt = synthetic_parallel(400, seed=1)
write(f"{d}/train.en", src[:300])
write(f"{d}/train.es", tgt[:300])
test_src, test_tgt = src[300:], tgt[300:]
test_src[3], test_tgt[3] = "", ""                        # dropped: empty
test_src[10] = " ".join(["the king"] * 80)               # dropped: too long
write(f"{d}/test.en", test_src)
write(f"{d}/test.es", test_tgt)
run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--valid-fraction", "0.1",
     "--test-src", f"{d}/test.en", "--test-tgt", f"{d}/test.es", "--vocab-size", "60", "--max-tokens", "100",
     "--out", f"{d}/c.h5"])
corpus = f"{d}/c.h5"
cfg = tiny_config(d, corpus, f"{d}/run")
run(["train", cfg, "--no-progress"])
ckpt = f"{d}/run/ckpt_step00000030.tern"

# 1. --ref aligns by input line: the raw reference scores exactly like the corpus targets (whose detokenized text is
# the raw text here), and a reference of another length is refused with both counts.
base = json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--beam", "1"]).stdout)
with_ref = json.loads(run(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--beam", "1",
                           "--ref", f"{d}/test.es"]).stdout)
check(base["sentences"] == 98 and abs(base["bleu"]["score"] - with_ref["bleu"]["score"]) < 1e-9,
      f"--ref after dropped lines: BLEU {with_ref['bleu']['score']:.4f} == corpus targets {base['bleu']['score']:.4f} "
      f"({base['sentences']} sentences)")
write(f"{d}/short.es", test_tgt[:98])
p = refused(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--ref", f"{d}/short.es"], EXIT_DATA,
            ["short.es has 98 lines", "input of 100 lines (98 sentences kept)"], "reference of the wrong length")
check("perplexity on" not in p.stderr, "and refused before the perplexity pass")

# 2. Resume from an older checkpoint: the checkpoint it writes survives keep_last, `latest` names it.
run(["train", cfg, "--set", f"train.run_dir={d}/older", "--set", "train.max_steps=6", "--set", "train.save_every=2",
     "--set", "train.keep_last=3", "--no-progress"])
run(["train", cfg, "--set", f"train.run_dir={d}/older", "--set", "train.max_steps=3", "--set", "train.save_every=1",
     "--set", "train.keep_last=2", "--resume", f"{d}/older/ckpt_step00000002.tern", "--no-progress"])
latest = open(f"{d}/older/latest").read().strip()
check(latest == "ckpt_step00000003.tern" and os.path.exists(f"{d}/older/{latest}"),
      f"resume from an older checkpoint: `latest` = {latest} exists ({sorted(os.listdir(f'{d}/older'))})")
p = run(["train", cfg, "--set", f"train.run_dir={d}/older", "--set", "train.max_steps=4", "--resume", "--no-progress"])
check("at step 3" in p.stderr, "the next --resume continues from it")

# 3. Checkpoints but no `latest`: a fresh start is refused, --resume takes the newest intact checkpoint and says so.
shutil.copytree(f"{d}/run", f"{d}/nolatest")
os.remove(f"{d}/nolatest/latest")
best_before = open(f"{d}/nolatest/best.tern", "rb").read()
refused(["train", cfg, "--set", f"train.run_dir={d}/nolatest"], EXIT_FILE,
        ["already holds checkpoints", "--resume auto"], "checkpoints without `latest`, no --resume")
check(open(f"{d}/nolatest/best.tern", "rb").read() == best_before, "best.tern untouched by the refused start")
with open(f"{d}/nolatest/ckpt_step00000030.tern", "r+b") as f:
    f.seek(3000)
    f.write(b"garbage")
p = run(["train", cfg, "--set", f"train.run_dir={d}/nolatest", "--set", "train.max_steps=32", "--resume",
         "--no-progress"])
check("resuming from the newest valid step checkpoint" in p.stderr and "ckpt_step00000020.tern" in p.stderr
      and "at step 20" in p.stderr, f"no `latest`: resumed from the newest intact checkpoint ({p.stderr[-400:]!r})")

# 4. Two jobs on one run directory: the second is refused and names the first's pid and host.
job = subprocess.Popen([TERN, "train", cfg, "--set", f"train.run_dir={d}/locked", "--set", "train.max_steps=100000",
                        "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
check(wait_for_metrics(f"{d}/locked"), "first job is training")
refused(["train", cfg, "--set", f"train.run_dir={d}/locked", "--resume"], EXIT_FILE,
        ["in use by another tern job", f"pid {job.pid} on host {os.uname().nodename}"], "second job on a locked run_dir")
job.send_signal(signal.SIGTERM)
wait_job(job)
p = run(["train", cfg, "--set", f"train.run_dir={d}/locked", "--set", "train.max_steps=1", "--resume", "--no-progress"],
        expect=None)
check(p.returncode == 0, f"the lock dies with its process (exit {p.returncode})")

# 5. One 20,000-word line: translated (truncated to the corpus limit, said on stderr), no hang.
line = " ".join(["the king said unto him"] * 4000)
p = run(["translate", "--checkpoint", ckpt, "--beam", "2"], stdin=line + "\nthe king .\n", timeout=90)
check(len(p.stdout.splitlines()) == 2 and "stdin:1: source of" in p.stderr and "truncated to 100" in p.stderr
      and p.seconds < 60, f"20,000-word line: {p.seconds:.1f} s, stderr {p.stderr.strip()[-200:]!r}")

# 6. metrics.jsonl after a killed run resumes: rows after the resumed step and a cut line are dropped.
shutil.copytree(f"{d}/run", f"{d}/killed")
for s in (20, 30):  # killed after step 30's metrics but before any later save reached the disk
    os.remove(f"{d}/killed/ckpt_step{s:08d}.tern")
open(f"{d}/killed/latest", "w").write("ckpt_step00000010.tern\n")
with open(f"{d}/killed/metrics.jsonl", "a") as f:
    f.write('{"step": 35, "train_loss"')  # cut mid-write by the kill
run(["train", cfg, "--set", f"train.run_dir={d}/killed", "--resume", "--no-progress"])
rows = metrics(f"{d}/killed")
steps = [r["step"] for r in rows if "train_loss" in r]
check(steps == sorted(set(steps)) and steps[-1] == 30, f"one train row per step after the resume ({steps})")
with open(f"{d}/killed/metrics.jsonl", "a") as f:
    f.write('{"step": 31, "tr')
p = run(["report", f"{d}/killed"], expect=None)
check(p.returncode == 0 and "skipping a truncated last line" in p.stderr, f"report with a cut final line ({p.stderr.strip()[-200:]!r})")
# A damaged line (a number JSON cannot hold) was an internal error (exit 1) in the report and at resume.
lines = open(f"{d}/killed/metrics.jsonl").read().splitlines()[:-1]
open(f"{d}/killed/metrics.jsonl", "w").write("\n".join(lines[:2] + ['{"step": 3, "train_loss": 1e999}'] + lines[2:]) + "\n")
refused(["report", f"{d}/killed"], EXIT_DATA, ["killed/metrics.jsonl:3: not a JSON object", "number overflow"],
        "report of a metrics line with 1e999")
shutil.copytree(f"{d}/killed", f"{d}/damaged")
shutil.copytree(f"{d}/killed", f"{d}/badenv")
open(f"{d}/badenv/metrics.jsonl", "w").write("\n".join(lines) + "\n")
open(f"{d}/badenv/environment.json", "w").write('{"host": "x", "cores": 1e999}\n')
refused(["report", f"{d}/badenv"], EXIT_DATA, ["badenv/environment.json: not JSON", "number overflow"],
        "report of an environment.json with 1e999")
run(["train", cfg, "--set", f"train.run_dir={d}/damaged", "--set", "train.max_steps=32", "--resume", "--no-progress"])
check(not any("1e999" in x for x in open(f"{d}/damaged/metrics.jsonl")), "resume drops the damaged metrics line")

# 7. Exit codes: file-system errors 7, command-line mistakes 2.
refused(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--out", corpus], EXIT_FILE,
        "output exists", "existing --out")
refused(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--hyp-out", f"{d}/nodir/h.txt"], EXIT_FILE,
        ["nodir/h.txt: --", "nodir does not exist (nothing was computed)"], "unwritable --hyp-out")
refused(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--no-translate", "--json", f"{d}/nodir/e.json"], EXIT_FILE,
        ["nodir/e.json: --", "nodir does not exist (nothing was computed)"], "unwritable --json")
refused(["ngram", "--smoothing", "interpolated", "--order", "2", "--train", f"{d}/train.es", "--test", f"{d}/test.es", "--arpa",
         f"{d}/nodir/lm.arpa"], EXIT_FILE,
        ["nodir/lm.arpa: --", "nodir does not exist (nothing was computed)"], "unwritable --arpa")
refused(["train", cfg, "--set", f"train.run_dir={d}/tiny.yaml/sub"], EXIT_FILE, "cannot create or write the run directory",
        "unwritable run_dir")
refused(["evaluate", "--checkpoint", ckpt], EXIT_CONFIG, "give a corpus (--data) or a text file (--text), not neither",
        "missing required option")
refused(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--beam", "x"], EXIT_CONFIG, "--beam", "non-numeric option")
refused(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--no-such-option"], EXIT_CONFIG, "no-such-option",
        "unknown option")
refused(["evaluat"], EXIT_CONFIG, ["unknown command 'evaluat'", "did you mean 'evaluate'"], "unknown command")
check(run(["--help"]).returncode == 0, "--help exits 0")

# 8. No LibTorch internals or stack traces: limits and checks name the key or file.
refused(["train", cfg, "--set", "model.hidden=100000"], EXIT_CONFIG, "model.hidden must be in [2, 65536]", "huge hidden")
refused(["train", cfg, "--set", "model.hidden=60000", "--set", "model.embedding=60000", "--set", f"train.run_dir={d}/big"],
        EXIT_CONFIG, ["the model cannot be built", "model.hidden=60000"], "a model too large to allocate")
refused(["train", cfg, "--set", "model.hidden=60000", "--set", "model.embedding=60000", "--set", "model.enc_layers=3",
         "--set", f"train.run_dir={d}/big"], EXIT_CONFIG,
        ["the model cannot be built with model.enc_layers=3, model.dec_layers=1,", "model.hidden=60000"],
        "a model too large to allocate names both depths")
refused(["train", cfg, "--set", "model.hidden=60000", "--set", "model.embedding=60000", "--set", "model.enc_layers=2",
         "--set", "model.dec_layers=2", "--set", f"train.run_dir={d}/big"], EXIT_CONFIG,
        ["the model cannot be built with model.enc_layers=2, model.dec_layers=2,"],
        "a model too large to allocate names the depths given, not model.layers")
refused(["train", cfg, "--set", "train.threads=2147483648"], EXIT_CONFIG, "train.threads must be in [0, 4096]",
        "threads 2^31")
refused(["train", cfg, "--set", "train.threads=4294967297"], EXIT_CONFIG, "train.threads must be in [0, 4096]",
        "threads 2^32+1")
refused(["train", cfg, "--set", "optim.optimizer=sgd", "--set", f"train.run_dir={d}/sgd", "--resume", ckpt],
        EXIT_CHECKPOINT, "optim.optimizer is adam there and sgd here", "resume after changing the optimizer")
shutil.copy(corpus, f"{d}/bigvocab.h5")
subprocess.run([sys.executable, "-c", "import h5py,sys; f=h5py.File(sys.argv[1],'r+'); "
                "f['vocab/tgt'].attrs['vocab_size']=10**12; f.close()", f"{d}/bigvocab.h5"], check=True)
refused(["train", cfg, "--set", f"data.corpus={d}/bigvocab.h5", "--set", f"train.run_dir={d}/bv"], EXIT_DATA,
        ["bigvocab.h5", "vocab_size is 1000000000000"], "corpus vocab_size 10^12")

# 9. Values that used to be accepted.
refused(["train", cfg, "--set", "distributed.timeout_s=.nan"], EXIT_CONFIG, "distributed.timeout_s must be a finite number",
        "timeout_s nan")
dup = TINY_CONFIG + "train: {seed: 4}\n"
refused(["train", tiny_config(d, corpus, f"{d}/dup", text=dup, name="dup.yaml")], EXIT_CONFIG,
        "section 'train' is given twice", "duplicate section")
dupkey = TINY_CONFIG.replace("layers: 1,", "layers: 1, layers: 2,")
refused(["train", tiny_config(d, corpus, f"{d}/dupk", text=dupkey, name="dupk.yaml")], EXIT_CONFIG,
        "key 'model.layers' is given twice", "duplicate key")
octal = TINY_CONFIG.replace("layers: 1,", "layers: 010,")
refused(["train", tiny_config(d, corpus, f"{d}/oct", text=octal, name="oct.yaml")], EXIT_CONFIG,
        "model.layers must be a decimal integer without leading zeros (got '010'", "octal-looking integer")
for opt, val, needle in [("--batch", "0", "--batch must be in [1, 100000]"),
                         ("--length-penalty", "nan", "--length-penalty: must be a finite number (got 'nan')"),
                         ("--length-penalty", "200", "--length-penalty must be in [0, 100]"),
                         ("--coverage-penalty", "nan", "--coverage-penalty: must be a finite number (got 'nan')"),
                         ("--coverage-penalty", "-0.1", "--coverage-penalty must be in [0, 100] (got -0.1)"),
                         ("--coverage-penalty", "1e300", "--coverage-penalty must be in [0, 100]"),
                         ("--max-len-ratio", "nan", "--max-len-ratio: must be a finite number (got 'nan')"),
                         ("--max-len-ratio", "inf", "--max-len-ratio: must be a finite number (got 'inf')"),
                         ("--max-len-ratio", "0", "--max-len-ratio must be in (0, 100]"),
                         ("--nbest", "99999999999999999999", "--nbest: must be an integer that fits in 64 bits"),
                         ("--batch", "", "--batch: must be an integer"),
                         ("--beam", "1000000000", "--beam must be in [1, 1024]")]:
    refused(["translate", "--checkpoint", ckpt, opt, val], EXIT_CONFIG, needle, f"translate {opt} {val}", stdin="a\n")
refused(["score", f"{d}/test.es", "-i", f"{d}/test.es", "-s", "floor", "-sv", "nan"], EXIT_CONFIG,
        "--smooth-value: must be a finite number (got 'nan')", "score -sv nan")
refused(["score", f"{d}/test.es", "-i", f"{d}/test.es", "-s", "floor", "-sv", "-3"], EXIT_CONFIG,
        "--smooth-value must be a finite number >= 0 (got -3)", "score -sv -3")
refused(["score", f"{d}/test.es", "-i", f"{d}/test.es", "-s", "floor", "-sv", "-1"], EXIT_CONFIG,
        "--smooth-value must be a finite number >= 0 (got -1)", "score -sv -1 (was taken as 'unset': floor[0.10])")
refused(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--seed", "-1", "--out",
         f"{d}/seed.h5"], EXIT_CONFIG, "--seed: must be >= 0 (got -1)", "prepare --seed -1 (was wrapped to 2^64-1)")
refused(["evaluate", "--checkpoint", ckpt, "--data", corpus, "--limit", "-1"], EXIT_CONFIG, "--limit must be >= 0",
        "evaluate --limit -1 (was read as 'all')")
refused(["train", cfg, "--set", "data.train_split=tset"], EXIT_CONFIG, "data.train_split must be train, valid or test",
        "a misspelt split is a config error")
write(f"{d}/empty.txt", [])
refused(["ngram", "--train", f"{d}/train.es", "--test", f"{d}/empty.txt"], EXIT_DATA, "empty.txt: the text file is empty",
        "ngram on an empty test file")

# 10. Messages name what the user needs.
refused(["train", cfg, "--set", "model.hidden=48", "--set", f"train.run_dir={d}/h48", "--resume", ckpt], EXIT_CHECKPOINT,
        "model.hidden is 32 there and 48 here", "resume refusal names the key")
refused(["ngram", "--train", f"{d}/empty.txt", "--test", f"{d}/test.es"], EXIT_DATA, "empty.txt", "ngram empty training file")
refused(["score", f"{d}/short.es", "-i", f"{d}/test.es"], EXIT_DATA, ["short.es has 98 lines but there are 100 hypotheses (in", "test.es)"],
        "score names the short reference")
write(f"{d}/blank.en", ["", "  ", ""])
write(f"{d}/blank.es", ["a", "b", "c"])
refused(["prepare", "--train-src", f"{d}/blank.en", "--train-tgt", f"{d}/blank.es", "--out", f"{d}/blank.h5"], EXIT_DATA,
        "blank.en: all 3 lines are blank", "blank prepare input")
shutil.copytree(f"{d}/run", f"{d}/garbage")
open(f"{d}/garbage/latest", "wb").write(b"\x1b[31m\x00\xffckpt\n")
refused(["train", cfg, "--set", f"train.run_dir={d}/garbage", "--resume"], EXIT_CHECKPOINT,
        ["garbage/latest: does not name a checkpoint", "\\x1b[31m\\x00\\xffckpt"], "garbage `latest` is shown escaped")

# 11. prepare: no temporary left by a signal or a kill; no --overwrite of a directory or of an input.
big_src, big_tgt = synthetic_parallel(150000, seed=5)
write(f"{d}/big.en", big_src)
write(f"{d}/big.es", big_tgt)
run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--vocab-size", "60",
     "--out", f"{d}/spm.h5"])
subprocess.run([sys.executable, "-c", "import h5py,sys; f=h5py.File(sys.argv[1]); "
                "[open(f'{sys.argv[2]}/{s}.model','wb').write(f['vocab/'+s][:].tobytes()) for s in ('src','tgt')]",
                f"{d}/spm.h5", d], check=True)
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
    os.makedirs(f"{d}/sig", exist_ok=True)
    job = subprocess.Popen([TERN, "prepare", "--train-src", f"{d}/big.en", "--train-tgt", f"{d}/big.es", "--spm-src",
                            f"{d}/src.model", "--spm-tgt", f"{d}/tgt.model", "--out", f"{d}/sig/out.h5"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not any(".tmp-" in n for n in os.listdir(f"{d}/sig")):
        time.sleep(0.05)
    job.send_signal(sig)
    job.wait()
    left = os.listdir(f"{d}/sig")
    if sig == signal.SIGKILL:
        check(any(".tmp-" in n for n in left), "SIGKILL leaves a temporary (nothing can remove it at once)")
        p = run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--vocab-size", "60",
                 "--out", f"{d}/sig/out.h5"])
        left = os.listdir(f"{d}/sig")
        check(left == ["out.h5"] and "left by a prepare that was killed" in p.stderr,
              f"the next prepare removes what SIGKILL left ({left})")
    else:
        check(left == [], f"{signal.Signals(sig).name} during prepare leaves nothing ({left})")
os.makedirs(f"{d}/outdir", exist_ok=True)
refused(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--out", f"{d}/outdir",
         "--overwrite"], EXIT_FILE, "--out names a directory", "--out DIR --overwrite")
before = open(f"{d}/train.es").read()
refused(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--out", f"{d}/train.es",
         "--overwrite"], EXIT_FILE, "--out is also an input", "--overwrite of an input")
check(open(f"{d}/train.es").read() == before, "the input is intact")

# 12. Files that are not what they claim are refused before being read whole.
refused(["evaluate", "--checkpoint", "/dev/zero", "--data", corpus], EXIT_CHECKPOINT,
        "/dev/zero: checkpoint must be a regular file", "--checkpoint /dev/zero", timeout=30)
refused(["train", "/dev/zero"], EXIT_CONFIG, "/dev/zero: config file must be a regular file", "config /dev/zero",
        timeout=30)
# A run directory or its `latest` pointer where a checkpoint goes: the error names the run's checkpoints.
refused(["translate", "--checkpoint", f"{d}/run"], EXIT_CHECKPOINT,
        ["is a run directory, not a checkpoint", f"{d}/run/best.tern (the best validation)", "(the newest)"],
        "--checkpoint RUN_DIR", timeout=30)
refused(["evaluate", "--checkpoint", f"{d}/run/latest", "--data", corpus], EXIT_CHECKPOINT,
        ["is a run's `latest` pointer, not a checkpoint", f"{d}/run/{open(f'{d}/run/latest').read().strip()} (the newest)"],
        "--checkpoint RUN_DIR/latest", timeout=30)
with open(f"{d}/huge.bin", "wb") as f:
    f.truncate(300 << 20)
p = refused(["evaluate", "--checkpoint", f"{d}/huge.bin", "--data", corpus], EXIT_CHECKPOINT, "not a tern checkpoint",
            "300 MB non-checkpoint", timeout=60)
with open("/dev/zero", "rb") as zero:
    p = subprocess.run([TERN, "translate", "--checkpoint", ckpt], stdin=zero, capture_output=True, text=True, timeout=120)
check(p.returncode == EXIT_DATA and "stdin: a line is longer than 64 MiB" in p.stderr,
      f"translate < /dev/zero ends (exit {p.returncode}, {p.stderr.strip()[-160:]!r})")

# 13. Corpus records that disagree are refused on open (see tests/data/test_corpus.cpp for each record).
shutil.copy(corpus, f"{d}/ns.h5")
subprocess.run([sys.executable, "-c", "import h5py,sys; f=h5py.File(sys.argv[1],'r+'); "
                "f['train'].attrs['num_sentences']=5; f.close()", f"{d}/ns.h5"], check=True)
refused(["evaluate", "--checkpoint", ckpt, "--data", f"{d}/ns.h5"], EXIT_DATA, ["ns.h5", "but num_sentences is 5"],
        "num_sentences smaller than the datasets")

# 14. An output that is an input, or another output, or cannot be written, is refused before any work, and the
# input is intact (it used to be replaced: `translate -i x -o x`, `evaluate --hyp-out CKPT`).
write(f"{d}/in.en", src[:3])
shutil.copy(ckpt, f"{d}/keep.tern")
os.symlink(f"{d}/keep.tern", f"{d}/alias.tern")
ckpt_bytes, in_bytes = open(f"{d}/keep.tern", "rb").read(), open(f"{d}/in.en").read()
refused(["translate", "--checkpoint", f"{d}/keep.tern", "-i", f"{d}/in.en", "-o", f"{d}/../{os.path.basename(d)}/in.en"],
        EXIT_FILE, ["-o is also the input of -i", "nothing was computed"], "translate -o over -i")
refused(["translate", "--checkpoint", f"{d}/keep.tern", "-i", f"{d}/in.en", "-o", f"{d}/alias.tern"], EXIT_FILE,
        "-o is also the input of --checkpoint", "translate -o over the checkpoint (through a symlink)")
refused(["evaluate", "--checkpoint", f"{d}/keep.tern", "--data", corpus, "--hyp-out", f"{d}/alias.tern"], EXIT_FILE,
        "--hyp-out is also the input of --checkpoint", "evaluate --hyp-out over the checkpoint")
refused(["evaluate", "--checkpoint", f"{d}/keep.tern", "--data", corpus, "--hyp-out", f"{d}/o.json", "--json",
         f"{d}/./o.json"], EXIT_FILE, "--hyp-out and --json name the same file", "evaluate --hyp-out = --json")
refused(["evaluate", "--checkpoint", f"{d}/keep.tern", "--data", corpus, "--json", d], EXIT_FILE,
        "--json is a directory", "evaluate --json DIR")
refused(["bench", "translate", "--checkpoint", f"{d}/keep.tern", "--data", corpus, "--json", corpus], EXIT_FILE,
        "--json is also the input of --data", "bench translate --json over the corpus")
refused(["ngram", "--train", f"{d}/in.en", "--test", f"{d}/in.en", "--arpa", f"{d}/in.en"], EXIT_FILE,
        "--arpa is also the input of --train", "ngram --arpa over --train")
check(open(f"{d}/keep.tern", "rb").read() == ckpt_bytes and open(f"{d}/in.en").read() == in_bytes,
      "the inputs are intact")
check(not os.path.exists(f"{d}/o.json"), "no output was written")
# An existing output (here a checkpoint that is not an input, and a text file) is refused and kept unless
# --overwrite: a typo or a rerun cannot silently replace a file. --overwrite never replaces an input.
write(f"{d}/old.txt", ["keep me"])
other_ckpt = f"{d}/other.tern"
shutil.copy(ckpt, other_ckpt)
for args, option in [(["evaluate", "--checkpoint", f"{d}/keep.tern", "--data", corpus, "--json", other_ckpt], "--json"),
                     (["evaluate", "--checkpoint", f"{d}/keep.tern", "--data", corpus, "--hyp-out", f"{d}/old.txt"],
                      "--hyp-out"),
                     (["ngram", "--train", f"{d}/in.en", "--test", f"{d}/in.en", "--arpa", f"{d}/old.txt"], "--arpa"),
                     (["ngram", "--smoothing", "interpolated", "--train", f"{d}/in.en", "--test", f"{d}/in.en",
                       "--sentence-scores", f"{d}/old.txt"], "--sentence-scores"),
                     (["bench", "translate", "--checkpoint", f"{d}/keep.tern", "--data", corpus, "--json",
                       f"{d}/old.txt"], "--json"),
                     (["translate", "--checkpoint", f"{d}/keep.tern", "-i", f"{d}/in.en", "-o", other_ckpt], "-o")]:
    refused(args, EXIT_FILE, [f": {option}: output exists; pass --overwrite to replace it", "nothing was computed"],
            f"{args[0]} {option} over an existing file")
check(open(other_ckpt, "rb").read() == ckpt_bytes and open(f"{d}/old.txt").read() == "keep me\n",
      "the existing files are intact")
run(["evaluate", "--checkpoint", f"{d}/keep.tern", "--data", corpus, "--no-translate", "--json", f"{d}/old.txt",
     "--overwrite"])
check(json.load(open(f"{d}/old.txt"))["split"] == "test", "--overwrite replaces it")
refused(["translate", "--checkpoint", f"{d}/keep.tern", "-i", f"{d}/in.en", "-o", f"{d}/in.en", "--overwrite"],
        EXIT_FILE, "-o is also the input of -i", "--overwrite of an input")
# tern report rewrites an earlier report of its own, but not someone's report.md in the --out directory.
os.makedirs(f"{d}/docs")
write(f"{d}/docs/report.md", ["# my notes"])
refused(["report", f"{d}/run", "--out", f"{d}/docs"], EXIT_FILE,
        ["docs/report.md: --out: output exists and is not an earlier tern report", "--overwrite"], "report over notes")
check(os.listdir(f"{d}/docs") == ["report.md"] and open(f"{d}/docs/report.md").read() == "# my notes\n",
      "the notes are kept")
run(["report", f"{d}/run", "--out", f"{d}/docs", "--overwrite"])
run(["report", f"{d}/run", "--out", f"{d}/docs"])
check(json.load(open(f"{d}/docs/report.json"))["format"] == "tern-report", "an earlier tern report is rewritten")

# 15. Resuming a run that reached train.max_steps trains nothing (it used to take one more step each time).
before = {f: open(f"{d}/run/{f}", "rb").read() for f in sorted(os.listdir(f"{d}/run")) if f != "lock"}
p = run(["train", cfg, "--set", f"train.run_dir={d}/run", "--resume", "--no-progress"])
after = {f: open(f"{d}/run/{f}", "rb").read() for f in sorted(os.listdir(f"{d}/run")) if f not in ("lock", "train.log")}
changed = sorted(f for f in set(before) | set(after)  # the logs and the environment of the newest start aside
           if f not in ("train.log", "environment.json") and before.get(f) != after.get(f))
check("nothing to train: the run is at step 30, which reaches train.max_steps = 30" in p.stderr and not changed,
      f"resume of a finished run changes nothing (changed: {changed}; {p.stderr.strip()[-160:]!r})")
stalled = ["--set", f"train.run_dir={d}/stalled", "--set", "train.early_stopping=1", "--set", "train.valid_every=1",
           "--set", "train.max_steps=50", "--set", "optim.lr=1e-9", "--set", "optim.schedule=constant", "--set",
           "optim.warmup_steps=0", "--set", "train.valid_metric=loss", "--no-progress"]
p = run(["train", cfg, *stalled])
p = run(["train", cfg, *stalled, "--resume"])
check("which early stopping ended (1 validations without improvement; raise train.early_stopping" in p.stderr and
      not os.path.exists(f"{d}/stalled/ckpt_step00000003.tern"), f"nor a run early stopping ended ({p.stderr.strip()[-200:]!r})")

# 16. Found by probing: what each says now.
# A full disk while saving a checkpoint: exit 5, the message names the newest checkpoint, which is intact and resumes
# (a 2 MB tmpfs in a private mount namespace: a checkpoint of the tiny model is ~0.8 MB, with best.tern two fit).
if os.geteuid() == 0 and shutil.which("unshare"):
    os.makedirs(f"{d}/full")
    script = (f"mount -t tmpfs -o size=2000k tmpfs {d}/full && {TERN} train {cfg} --no-progress --set "
              f"train.run_dir={d}/full/run --set train.keep_last=1; echo rc=$?; "
              f"mount -o remount,size=4000k {d}/full && "  # room is made
              f"{TERN} train {cfg} --no-progress --set train.run_dir={d}/full/run --set train.max_steps=12 --resume "
              f"--set train.save_every=100 --set train.valid_every=100 --set train.keep_last=1; echo rc=$?")
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    check("rc=5" in p.stdout and "ckpt_step00000020.tern: write failed (No space left on device)" in p.stderr and
          "the newest checkpoint of the run is still" in p.stderr and "ckpt_step00000010.tern: make room" in p.stderr,
          f"a full disk at a checkpoint: exit 5 naming the one to resume from ({p.stderr.strip()[-300:]!r})")
    check("resumed from" in p.stderr and "ckpt_step00000010.tern at step 10" in p.stderr and
          p.stdout.strip().endswith("rc=0"), f"and the run resumes from it ({p.stdout.strip()!r})")
    # prepare on a full disk: exit 7 with the system's message (not HDF5's whole record), no temporary left.
    os.makedirs(f"{d}/full2")
    p = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=60k tmpfs {d}/full2 && {TERN} prepare "
                        f"--train-src {d}/train.en --train-tgt {d}/train.es --vocab-size 60 --valid-fraction 0.1 "
                        f"--out {d}/full2/c.h5; echo rc=$?; ls {d}/full2"], capture_output=True, text=True, timeout=300)
    last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    check(p.stdout.strip() == "rc=7" and last.startswith("file error: ") and
          last.endswith("file write failed (No space left on device)") and "errno" not in last,
          f"prepare on a full disk: exit 7, the system's message, nothing left ({p.stdout.strip()!r}, {last!r})")
else:
    print("note: the full-disk check needs root (a tmpfs in a private mount namespace); not run")
refused(["train", cfg, "--set", "optim.lr=-1"], EXIT_CONFIG, "--set: optim.lr must be > 0",
        "a --set value out of range names --set, not the file whose value it replaced")
refused(["train", ckpt], EXIT_CONFIG, ["not a YAML text file", "it is a tern checkpoint", "--resume"],
        "a checkpoint given as the config")
refused(["train", corpus], EXIT_CONFIG, ["not a YAML text file", "HDF5", "data.corpus"], "a corpus given as the config")
# A config written by hand inside its run directory as config.yaml: a fresh run would replace it with the resolved
# config (comments lost), so it is refused; tern's own config.yaml (same text) is used as it is.
os.makedirs(f"{d}/own")
own = tiny_config(f"{d}/own", corpus, ".", text="# my notes\n" + TINY_CONFIG, name="config.yaml")
own_text = open(own).read()
refused(["train", "config.yaml", "--no-progress"], EXIT_FILE,
        ["config.yaml: the config given is train.run_dir's config.yaml", "mv config.yaml my.yaml", "nothing was written"],
        "a hand-written config that a run would replace", cwd=f"{d}/own")
check(open(own).read() == own_text and not glob.glob(f"{d}/own/*.tern"), "the hand-written config is kept")
os.rename(own, f"{d}/own/my.yaml")
run(["train", "my.yaml", "--no-progress", "--set", "train.max_steps=2"], cwd=f"{d}/own")
for f in glob.glob(f"{d}/own/*.tern") + [f"{d}/own/latest"]:
    os.remove(f)
run(["train", "config.yaml", "--no-progress", "--set", "train.max_steps=2"], cwd=f"{d}/own")
check(os.path.exists(f"{d}/own/ckpt_step00000002.tern"), "a fresh run from the config.yaml a run wrote starts")
refused(["evaluate", "--checkpoint", ckpt, "--data", d], EXIT_DATA, "is a directory, not an HDF5 corpus",
        "a directory given as the corpus")
# A corpus without a valid split: training says how to make one.
run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--vocab-size", "60", "--out",
     f"{d}/novalid.h5"])
refused(["train", cfg, "--set", f"data.corpus={d}/novalid.h5", "--set", f"train.run_dir={d}/novalid"], EXIT_DATA,
        ["novalid.h5: split 'valid' is missing (has: train)", "--valid-src/--valid-tgt", "--valid-fraction"],
        "training on a corpus without a valid split")
# A data directory as train.run_dir: its valid.ref (a name a run writes) is kept, and no lock is left behind, so a
# second try is refused the same way.
os.makedirs(f"{d}/data_dir")
write(f"{d}/data_dir/valid.ref", ["Genesis 1:1"])
for attempt in (1, 2):
    refused(["train", cfg, "--set", f"train.run_dir={d}/data_dir", "--no-progress"], EXIT_FILE,
            ["data_dir holds valid.ref, a file that a run writes", "no lock file", "nothing was written"],
            f"a directory no run has used, holding a file a run writes (try {attempt})")
check(sorted(os.listdir(f"{d}/data_dir")) == ["valid.ref"] and open(f"{d}/data_dir/valid.ref").read() == "Genesis 1:1\n",
      "the directory is as it was")
p = run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--valid-fraction", "0.1",
         "--vocab-size", "500", "--out", f"{d}/big_vocab.h5"])
check("the src SentencePiece model has" in p.stderr and "fewer than --vocab-size 500" in p.stderr,
      "prepare says when the vocabulary is smaller than --vocab-size")
write(f"{d}/seen.en", src[:20])
write(f"{d}/seen.es", tgt[:20])
p = run(["prepare", "--train-src", f"{d}/train.en", "--train-tgt", f"{d}/train.es", "--valid-fraction", "0.1",
         "--test-src", f"{d}/seen.en", "--test-tgt", f"{d}/seen.es", "--vocab-size", "60", "--out", f"{d}/seen.h5"])
check("of its 20 sentences also occur in train as sources" in p.stderr, f"prepare says that test sentences occur in train ({p.stderr[-300:]!r})")
run(["train", cfg, "--set", f"data.corpus={d}/seen.h5", "--set", f"train.run_dir={d}/seen_run", "--set",
     "train.max_steps=2", "--no-progress"])
p = run(["evaluate", "--checkpoint", f"{d}/seen_run/best.tern", "--data", f"{d}/seen.h5", "--no-translate"])
seen = json.loads(p.stdout)["overlap_with_train"]
check(seen["sentences"] == 20 and seen["in_train_src"] > 0 and "note: " in p.stderr and
      "test sentences also occur in train" in p.stderr, f"so does evaluate, in its JSON too ({seen})")
# The same vocabularies, other sentences: resuming on it works and says the continuation is no longer exact.
import h5py  # noqa: E402
with h5py.File(corpus, "r") as f:
    for side in ("src", "tgt"):
        f[f"vocab/{side}"][()].tofile(f"{d}/{side}.model")
more_src, more_tgt = synthetic_parallel(500, seed=5)
write(f"{d}/more.en", more_src)
write(f"{d}/more.es", more_tgt)
run(["prepare", "--train-src", f"{d}/more.en", "--train-tgt", f"{d}/more.es", "--valid-fraction", "0.1",
     "--spm-src", f"{d}/src.model", "--spm-tgt", f"{d}/tgt.model", "--out", f"{d}/more.h5"])
shutil.copytree(f"{d}/run", f"{d}/moved")
p = run(["train", cfg, "--set", f"train.run_dir={d}/moved", "--set", f"data.corpus={d}/more.h5", "--set",
         "train.max_steps=32", "--resume", "--no-progress"])
check("is not the corpus" in p.stderr and "no longer an exact continuation" in p.stderr and "(sentences: train " in p.stderr,
      f"resume on another corpus of the same vocabularies is said ({p.stderr[-400:]!r})")
# n-gram: a corpus of other SentencePiece models is refused; text against a corpus gets a note.
run(["prepare", "--train-src", f"{d}/train.es", "--train-tgt", f"{d}/train.en", "--valid-fraction", "0.1",
     "--test-src", f"{d}/test.es", "--test-tgt", f"{d}/test.en", "--vocab-size", "60", "--out", f"{d}/rev.h5"])
refused(["ngram", "--train", corpus, "--test", f"{d}/rev.h5", "--discount-fallback"], EXIT_DATA,
        ["--test", "rev.h5", "is not that of --train", "SentencePiece"], "n-gram scoring across two vocabularies")
p = run(["ngram", "--train", corpus, "--test", f"{d}/test.es", "--discount-fallback"])
check("note: " in p.stderr and "test.es is read as whitespace-separated words" in p.stderr,
      "n-gram scoring of text with a corpus's model notes the units")
write(f"{d}/blank.txt", ["", " \t", ""])
for flag in ("--train", "--test"):
    other = "--test" if flag == "--train" else "--train"
    refused(["ngram", flag, f"{d}/blank.txt", other, f"{d}/train.en"], EXIT_DATA,
            "blank.txt: its 3 line(s) are blank", f"ngram {flag} of blank lines only")
# Standard output that cannot be written (a full disk, a closed descriptor): exit 7, not a silent 0 with the output
# lost; translate stops at the first batch it cannot write.
write(f"{d}/many.en", [src[i % len(src)] for i in range(300)])
for args in (["translate", "--checkpoint", ckpt, "-i", f"{d}/many.en"], ["score", f"{d}/many.en", "-i", f"{d}/many.en"],
             ["--help"], ["score", "--version"]):
    for target, why in (("/dev/full", "No space left on device"), (None, "Bad file descriptor")):
        with open(target or os.devnull, "w") as sink:
            p = subprocess.run([TERN] + args, stdout=sink if target else subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, timeout=120 * TIMEOUT_SCALE, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               preexec_fn=None if target else (lambda: os.close(1)))
        check(p.returncode == EXIT_FILE and f"standard output: write failed ({why})" in p.stderr,
              f"tern {args[0]} > {target or '&-'}: exit {p.returncode}, {p.stderr.strip()[-200:]!r}")

# A one-process command under mpirun would run whole in each rank (every translation printed twice, one output written
# by two processes): refused before any work, with the way to run it.
if shutil.which("mpirun"):
    p = subprocess.run(["mpirun", "-np", "2", TERN, "translate", "--checkpoint", ckpt, "-i", f"{d}/many.en"],
                       capture_output=True, text=True, timeout=120 * TIMEOUT_SCALE)
    check(p.returncode == EXIT_CONFIG and p.stdout == "" and "tern translate runs in one process, but a launcher "
          "(mpirun, srun) started 2" in p.stderr and "run it without mpirun or srun" in p.stderr,
          f"mpirun -np 2 tern translate: exit {p.returncode}, {p.stdout.count(chr(10))} line(s) out, "
          f"{p.stderr.strip()[-300:]!r}")
    p = subprocess.run(["mpirun", "-np", "2", TERN, "bench", "translate", "--checkpoint", ckpt, "--data", corpus], capture_output=True,
                       text=True, timeout=120 * TIMEOUT_SCALE)
    check(p.returncode == EXIT_CONFIG and "tern bench translate runs in one process" in p.stderr,
          f"mpirun -np 2 tern bench translate: exit {p.returncode}, {p.stderr.strip()[-200:]!r}")

shutil.rmtree(d)
finish()
