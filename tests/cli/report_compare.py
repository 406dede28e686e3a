"""tern report RUN_A RUN_B --out DIR: one page comparing runs. The settings that differ (and only those), the curves of
every run, the evaluations, and a paired bootstrap of the evaluations on the same references equal to `tern score
REF -i A B --paired-bs` (itself checked against sacreBLEU); an evaluation without kept translations, or whose
translations changed since, is named and left out; Chromium draws the page; bad inputs exit with their codes."""
import json
import os
import shutil
import sys

import h5py

sys.path.insert(0, os.path.dirname(__file__))
from common import *  # noqa: E402,F403

d = tempdir()
corpus = make_corpus(d, n=500)
runs = {"base": [], "wide": ["--set", "model.hidden=48", "--set", "train.seed=5"]}
for name, extra in runs.items():
    run(["train", tiny_config(d, corpus, f"{d}/{name}", name=f"{name}.yaml"), "--no-progress", "--set",
         "train.max_steps=30", *extra])
    # The test split against the raw target file it was prepared from (--ref: aligned by input line), translations kept.
    run(["evaluate", "--checkpoint", f"{d}/{name}/best.tern", "--data", corpus, "--beam", "2", "--ref",
         f"{d}/train.es", "--hyp-out", f"{d}/{name}/test.hyp", "--json", f"{d}/{name}/test_eval.json"])
# Without --hyp-out: listed, not tested. With the corpus targets as references: its own group (one system: no test).
run(["evaluate", "--checkpoint", f"{d}/wide/best.tern", "--data", corpus, "--split", "valid", "--json",
     f"{d}/wide/valid_eval.json"])

p = run(["report", f"{d}/base", f"{d}/wide", "--out", f"{d}/cmp"])
html_path, json_path, md_path = p.stdout.split()
data = json.load(open(json_path))
check(data["format"] == "tern-comparison" and [r["run"] for r in data["runs"]] == ["base", "wide"],
      "report.json: a comparison of the two runs, in the order given")
diff = data["config_differences"]
check(diff.get("model.hidden") == ["32", "48"] and diff.get("train.seed") == ["3", "5"] and
      "train.run_dir" not in diff and "model.layers" not in diff, f"only the settings that differ ({diff})")
check(all(r["series"]["valid_loss"] and r["summary"]["steps"] == 30 for r in data["runs"]),
      "each run's curves and summary")

# The paired test equals tern score's on the same files and references.
with h5py.File(corpus, "r") as f:
    lines = f["test/lines"][:]
raw = open(f"{d}/train.es").read().splitlines()
write(f"{d}/test.ref", [raw[i - 1] for i in lines])
score = json.loads(run(["score", f"{d}/test.ref", "-i", f"{d}/base/test.hyp", f"{d}/wide/test.hyp", "--paired-bs",
                        "-m", "bleu", "chrf", "-f", "json"]).stdout)
tests = data["paired_tests"]
ok = len(tests) == 1 and tests[0]["split"] == "test" and [s["run"] for s in tests[0]["systems"]] == ["base", "wide"]
for ours, theirs in zip(tests[0]["systems"] if ok else [], score):
    for metric, name in (("bleu", "BLEU"), ("chrf", "chrF2")):
        a, b = ours[metric], theirs[name]
        ok = ok and abs(a["score"] - b["score"]) < 1e-9 and abs(a["mean"] - b["mean"]) < 1e-4
        ok = ok and abs(a["ci"] - b["ci"]) < 1e-4 and a.get("p_value") == b["p_value"]
check(ok, f"paired bootstrap equals tern score --paired-bs ({tests}, {score})")
skipped = {(s["run"], s["file"]): s["why"] for s in data["not_compared"]}
check("without --hyp-out" in skipped.get(("wide", "valid_eval.json"), ""), f"no kept translations: named ({skipped})")
html = open(html_path, encoding="utf-8").read()
md = open(md_path).read()
check("<h2>Settings that differ</h2>" in html and "<td>model.hidden</td>" in html and "Paired significance" in html,
      "the page has the settings, the paired tests")
check(md.startswith("# tern comparison") and "| model.hidden | 32 | 48 |" in md and "(baseline)" in md, "report.md")
attrs = chromium_render(html_path, d)
if attrs is None:
    check(False, "chromium is installed (scripts/setup.sh installs Debian's chromium)")
else:
    check(attrs.get("charts") and attrs.get("charts") == attrs.get("drawn") and int(attrs["charts"]) >= 3 and
          "errors" not in attrs and int(attrs.get("tables", 0)) >= 4, f"Chromium drew the comparison ({attrs})")

# Translations changed since their evaluation: that evaluation is left out of the tests, named, with the BLEU found.
shutil.copyfile(f"{d}/test.ref", f"{d}/wide/test.hyp")  # BLEU 100 now
# An edited evaluation JSON of the wrong types: skipped with a warning, the report still written.
json.dump({"checkpoint": "best.tern", "perplexity": 5}, open(f"{d}/base/odd_eval.json", "w"))
p = run(["report", f"{d}/base", f"{d}/wide", "--out", f"{d}/cmp"])
data = json.load(open(f"{d}/cmp/report.json"))
why = {(s["run"], s["file"]): s["why"] for s in data["not_compared"]}.get(("wide", "test_eval.json"), "")
check(data["paired_tests"] == [] and "changed since" in why, f"changed translations: not tested ({why})")
check("odd_eval.json: skipped" in p.stderr and "perplexity.ppl_per_token is not a number" in p.stderr,
      f"a JSON of the wrong types is skipped with a warning ({p.stderr[-300:]!r})")
os.remove(f"{d}/base/odd_eval.json")
# Devices where the run's files are expected (a device or a pipe would never end): a JSON result is skipped with a
# warning; a metrics file is refused, exit 7 naming it.
os.symlink("/dev/zero", f"{d}/base/zero.json")
p = run(["report", f"{d}/base", "--out", f"{d}/zero_report"], timeout=60)
check("zero.json: JSON result must be a regular file" in p.stderr, f"a device as a JSON result: skipped ({p.stderr[-200:]!r})")
os.remove(f"{d}/base/zero.json")
shutil.copytree(f"{d}/base", f"{d}/devrun")
os.remove(f"{d}/devrun/metrics.jsonl")
os.symlink("/dev/zero", f"{d}/devrun/metrics.jsonl")
p = run(["report", f"{d}/devrun", "--out", f"{d}/dev_report"], expect=7, timeout=60)
check("metrics.jsonl: metrics file must be a regular file" in p.stderr, f"a device as metrics.jsonl: exit 7 ({p.stderr[-200:]!r})")

# Bad inputs.
p = run(["report", f"{d}/base", f"{d}/wide"], expect=2)
check("comparing 2 runs needs --out" in p.stderr, "several runs without --out: exit 2")
p = run(["report", f"{d}/base", f"{d}/../{os.path.basename(d)}/base", "--out", f"{d}/cmp2"], expect=2)
check("are the same run directory (runs 1 and 2)" in p.stderr and not os.path.exists(f"{d}/cmp2"),
      "one run twice: exit 2, nothing written")
p = run(["report", f"{d}/base", f"{d}/nowhere", "--out", f"{d}/cmp2"], expect=4)
check("nowhere: not a directory" in p.stderr and not os.path.exists(f"{d}/cmp2"), "a missing run: exit 4")
os.makedirs(f"{d}/cmp3")
write(f"{d}/cmp3/report.md", ["mine"])
p = run(["report", f"{d}/base", f"{d}/wide", "--out", f"{d}/cmp3"], expect=7)
check("output exists and is not an earlier tern report" in p.stderr and open(f"{d}/cmp3/report.md").read() == "mine\n",
      "a foreign report.md in --out: exit 7, kept")
run(["report", f"{d}/base", f"{d}/wide", "--out", f"{d}/cmp"])  # an earlier comparison is replaced
# Two runs with the same name in different places are labelled by their paths.
shutil.copytree(f"{d}/base", f"{d}/other/base")
data = json.loads(open(run(["report", f"{d}/base", f"{d}/other/base", "--out", f"{d}/cmp4"]).stdout.split()[1]).read())
check([r["run"] for r in data["runs"]] == [f"{d}/base", f"{d}/other/base"], "runs of one name: labelled by path")
# Runs trained and evaluated with relative paths (from d), compared from elsewhere: the paths evaluate and train
# recorded are found from where they ran (their working_dir).
rel_corpus = os.path.relpath(corpus, d)
for name, seed in (("rel_a", "3"), ("rel_b", "7")):
    run(["train", tiny_config(d, corpus, f"{d}/{name}", name=f"{name}.yaml"), "--no-progress", "--set",
         "train.max_steps=10", "--set", f"data.corpus={rel_corpus}", "--set", f"train.run_dir={name}", "--set",
         f"train.seed={seed}"], cwd=d)
    run(["evaluate", "--checkpoint", f"{name}/best.tern", "--data", rel_corpus, "--beam", "1", "--hyp-out",
         f"{name}/test.hyp", "--json", f"{name}/test_eval.json"], cwd=d)
out = run(["report", f"{d}/rel_a", f"{d}/rel_b", "--out", f"{d}/cmp_rel"], cwd="/").stdout.split()[1]
data = json.load(open(out))
check(len(data["paired_tests"]) == 1 and not data["not_compared"],
      f"relative paths found from where evaluate ran ({data['not_compared']})")
one = json.load(open([f for f in run(["report", f"{d}/rel_a", "--out", f"{d}/rel_report"], cwd="/").stdout.split()
                      if f.endswith(".json")][0]))
check("filter_stats" in one["corpus"], f"the run's corpus found from where train ran ({one['corpus']})")
finish()
