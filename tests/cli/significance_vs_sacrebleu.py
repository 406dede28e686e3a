"""tern score's statistical tests against sacreBLEU 2.6.0's command line, byte for byte: --confidence (one system),
several systems in a table, --paired-bs and --paired-ar (text and JSON), at many decimals (-w 8: the float32
arithmetic of sacreBLEU's resampling shows there), with chrF++, epsilon smoothing, two references, other seeds
(SACREBLEU_SEED / --seed) and resample counts, down to one segment; then the refusals, each with its exit code."""
import os
import random
import subprocess
import sys

import sacrebleu

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
d = tempdir()
rng = random.Random(5)
vocab = ("el la de que y en los se del las un por con no una su para es al lo como más o pero sus le ha me si sin "
         "sobre este ya entre cuando todo esta ser son dos también fue había era muy años hasta desde está mi porque "
         "qué sólo han yo hay vez puede todos así nos ni parte tiene él uno donde bien tiempo mismo ese ahora cada e "
         "vida otro después te otros aunque esa eso hace otra gobierno tan durante siempre día tanto ella tres sí dijo "
         "¡Cómo! ¿dónde? «citas» 2024, 3.14 €5").split()
ref = [" ".join(rng.choice(vocab) for _ in range(rng.randint(4, 25))) for _ in range(90)]
ref2 = [" ".join(w for w in r.split() if rng.random() > 0.2) for r in ref]


def system(p_drop, p_swap):
    out = []
    for r in ref:
        w = [x if rng.random() > p_swap else rng.choice(vocab) for x in r.split() if rng.random() > p_drop]
        out.append(" ".join(w))
    return out


systems = {"A": system(0.1, 0.2), "B": system(0.15, 0.25), "C": system(0.4, 0.5), "D": system(0.1, 0.2)}
for name, lines in systems.items():
    write(f"{d}/{name}", lines)
write(f"{d}/ref", ref)
write(f"{d}/ref2", ref2)


def same(args, n=None, env_seed=None, what=""):
    """Runs tern score and sacreBLEU on the first n lines with the same arguments; the outputs must be identical."""
    refs, rest = args
    if n is not None:
        for name in ["ref", "ref2", *systems]:
            src = open(f"{d}/{name}", encoding="utf-8").read().splitlines()[:n]
            write(f"{d}/{name}.{n}", src)
        refs = [f"{r}.{n}" for r in refs]
        rest = [f"{a}.{n}" if a.startswith(d) else a for a in rest]
    env = {**os.environ, **({"SACREBLEU_SEED": env_seed} if env_seed else {})}
    theirs = subprocess.run([sys.executable, "-m", "sacrebleu", *refs, *rest], capture_output=True, text=True, env=env)
    ours = run(["score", *refs, *rest, *(["--seed", env_seed] if env_seed else [])])
    check(theirs.returncode == 0 and ours.stdout == theirs.stdout,
          f"same output as `sacrebleu {' '.join(a.replace(d + '/', '') for a in refs + rest)}`"
          + (f" (seed {env_seed})" if env_seed else "") + (f" on {n} segment(s)" if n else "") + what
          + ("" if ours.stdout == theirs.stdout else f"\n--- tern\n{ours.stdout}--- sacrebleu\n{theirs.stdout}{theirs.stderr[-500:]}"))


R = [f"{d}/ref"]
A, B, C, D = (f"{d}/{x}" for x in "ABCD")
same((R, ["-i", A, "--confidence", "-m", "bleu", "chrf", "-f", "text", "-w", "8"]))
same((R, ["-i", A, "--confidence", "-m", "bleu", "chrf", "-cin", "57", "-w", "3"]))
same((R, ["-i", A, "-ci", "-m", "chrf", "-cw", "2", "--chrf-eps-smoothing", "-w", "12", "-f", "text"]), env_seed="7")
# Table columns measured as tabulate measures them with wcwidth (installed by scripts/setup.sh): CJK takes two.
write(f"{d}/日本語", systems["B"])
same((R, ["-i", A, f"{d}/日本語", "-m", "bleu", "-f", "text"]))
same((R, ["-i", A, f"{d}/日本語", "-par", "-m", "bleu", "-f", "text"]))
same((R, ["-i", A, "-ci", "-cin", "1", "-m", "bleu", "chrf", "-f", "text"]))  # one resample: no interval, no bs field
same((R, ["-i", A, B, "-pbs", "-pbsn", "1", "-m", "bleu", "chrf", "-f", "text"]))
same((R, ["-i", A, B, "-par", "-parn", "1", "-m", "bleu", "-f", "text"]))
same((R, ["-i", A, B, C, "-m", "bleu", "chrf", "-f", "text"]))
same((R, ["-i", A, B, C, "-m", "chrf", "bleu", "-w", "3"]))
for test, count in (("--paired-bs", "--paired-bs-n"), ("--paired-ar", "--paired-ar-n")):
    same((R, ["-i", A, B, C, D, test, "-m", "bleu", "chrf", "-f", "text", "-w", "8"]))
    same((R, ["-i", C, A, test, count, "333", "-m", "chrf", "bleu", "-f", "text", "-w", "6"]), env_seed="7")
    same((R, ["-i", A, B, test, "-m", "chrf", "-cw", "2", "--chrf-eps-smoothing", "-f", "text", "-w", "8"]))
    same((R + [f"{d}/ref2"], ["-i", A, B, test, "-m", "bleu", "chrf", "-f", "text", "-w", "4", "-tok", "char"]))
    same((R, ["-i", A, B, C, test, "-m", "bleu"]))  # JSON: every float in full
    for n in (1, 5, 9):
        same((R, ["-i", A, B, test, "-m", "bleu", "chrf", "-f", "text", "-w", "8"]), n=n)
same((R, ["-i", A, B, "--paired-ar", "-m", "bleu", "chrf"]))  # JSON of both metrics (AR: float64 throughout)
# TER: statistics with a fractional part (average lengths of two references), lower is better.
same((R + [f"{d}/ref2"], ["-i", A, B, C, "--paired-bs", "-m", "ter", "bleu", "-f", "text", "-w", "8"]))
same((R + [f"{d}/ref2"], ["-i", A, B, "--paired-ar", "-m", "ter", "-w", "8"]))
same((R, ["-i", C, "--confidence", "-m", "ter", "chrf", "-f", "text", "-w", "8"]))

# An identical system: sacreBLEU's smallest p-value, marked significant; tern prints the same and says why on stderr.
write(f"{d}/A_copy", systems["A"])
p = run(["score", *R, "-i", A, f"{d}/A_copy", "-pbs", "-m", "bleu", "-f", "text"])
check("(p = 0.0010)*" in p.stdout and "is line for line the same as the baseline" in p.stderr,
      "an identical system: p = 1/(n+1) as sacreBLEU, with a note on stderr")

# Refusals: command-line and configuration mistakes exit 2, data errors 4; the message names the rule or file.
bad = [(["-i", A, "-pbs"], 2, "compares systems with the first: give several"),
       (["-i", A, B, "--confidence"], 2, "--confidence is for one system (got 2)"),
       (["-i", A, B, "-pbs", "-par"], 2, "excludes"),
       (["-i", A, B, "-pbs", "--confidence"], 2, "a paired test (--paired-bs) already gives"),
       (["-i", A, A, "-pbs"], 2, "compares systems with the first"),  # the baseline again is ignored, as sacreBLEU
       (["-i", A, B, B], 2, f"system {B} is given twice"),
       (["-i", A, "-", "-pbs"], 2, "stdin (-) cannot be one of several systems"),
       (["-i", A, B, "-sl"], 2, "sentence-level scoring takes one system (got 2)"),
       (["-i", A, "-sl", "-ci"], 2, "not available at sentence level"),
       (["-i", A, B, "-pbs", "--seed", "0"], 2, "--seed must be at least 1"),
       (["-i", A, "-ci", "-cin", "0"], 2, "--confidence-n must be between 1 and 1,000,000 (got 0)"),
       (["-i", A, B, "-par", "-parn", "2000000"], 2, "--paired-ar-n must be between 1 and 1,000,000 (got 2000000)"),
       (["-i", A, B, "-pbs", "--seed", "-3"], 2, "--seed"),
       (["-i", A, f"{d}/short", "-pbs"], 4, f"{d}/ref has 90 lines but there are 5 hypotheses (in {d}/short)"),
       (["-i", A, f"{d}/missing", "-pbs"], 4, f"{d}/missing: cannot open hypotheses"),
       (["-i", f"{d}/big", f"{d}/big2", "-par", "-parn", "999999"], 2,
        "999999 resamples of 6000 segments are 5999994000 draws, more than the 500000000")]
write(f"{d}/short", systems["A"][:5])
for name in ("big", "big2"):  # 6,000 segments: a million resamples of them would hold 6e9 draws
    write(f"{d}/{name}", ["a b c"] * 6000)
for args, code, message in bad:
    p = run(["score", *(R if "big" not in args[1] else [f"{d}/big"]), *args], expect=code)
    check(p.returncode != 0 and message in p.stderr and not p.stdout,
          f"tern score {' '.join(a.replace(d + '/', '') for a in args)}: exit {p.returncode}, {message!r}"
          + ("" if message in p.stderr else f" (stderr: {p.stderr.strip()})"))
finish()
