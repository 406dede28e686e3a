#!/usr/bin/env bash
# Every GPU claim measured in one call on the GPU machine (issue: "GPU: every GPU claim measured in one prepared
# call"). Stages, each with its own time limit; a failed stage does not stop the next:
#   deps      unpack from .gpu_bundle/ (scripts/gpu_bundle.sh) only the libraries the machine lacks
#   build     Release build with all cores of only the targets the check runs
#   tests     the CUDA-labelled tests (ctest -L cuda) and the unit tests, on the GPU
#   train     mpirun -np 1 tern train of the Bible config through NCCL in fp32, fp16 and bf16 (validation perplexity)
#   bench     bench/train_vs_eager.py: configs/bench_lm.yaml, configs/bench_seq2seq.yaml with and without input
#             feeding, fp32/fp16/bf16 (tern and eager PyTorch tokens/s in the same run)
#   allreduce tern bench allreduce through NCCL
#   translate tern bench translate of the fp32 checkpoint: beam 1 and 5, batch 64, on the GPU (sentences/s, BLEU)
#   onmt      bench/onmt_compare.sh on the GPU: tern and OpenNMT-py 3.5.1 (from the bundle's wheels) each trained
#             850 steps on the Bible corpus, then beam 5 decoding of the test set, 3 rounds (training tokens/s,
#             sentences/s, BLEU); smoke: skipped unless ONMT_WHEELS names wheels for this machine's Python
# Everything goes to $OUT/gpu_check.json (GPU, driver, versions, every figure, each stage's status) and
# $OUT/gpu_check.log.
#
#   scripts/gpu_check.sh            on the GPU machine (device run, carry [".gpu_bundle"])
#   scripts/gpu_check.sh --stages deps,build,onmt   only these stages (a stage name or its prefix: train, bench)
#   scripts/gpu_check.sh --smoke    the same stages on the CPU with tiny shapes (< 3 minutes; ctest gpu_check_smoke)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=gpu
STAGES=all
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) MODE=smoke ;;
    --stages) STAGES=${2:?--stages needs a comma-separated list}; shift ;;
    *) echo "gpu_check: unknown argument '$1' (--smoke, --stages LIST)" >&2; exit 2 ;;
  esac
  shift
done
OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT"
RES=$(mktemp -d /tmp/gpu_check.XXXXXX)  # one JSON file per stage and figure, merged at the end
LOG=$OUT/gpu_check.log
: > "$LOG"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
T_START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-540}  # seconds for all stages: a stage that would not fit is skipped (the device call has 600)
cat > "$RES/report.py" <<'PY'
import glob, json, os, subprocess, sys
res, out, mode, tern, total = sys.argv[1:6]
quiet = "--quiet" in sys.argv  # after each stage: only the JSON
precisions = [a for a in sys.argv[6:] if a != "--quiet"]
def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e:
        return f"unavailable ({e})"
def load(path):
    try:
        return json.load(open(path))
    except Exception:
        return None
r = {"mode": mode, "seconds": int(total), "stages": {}, "figures": {}}
try:
    import torch
    r["torch"] = torch.__version__
    r["cuda_runtime"] = torch.version.cuda
    r["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() and mode == "gpu" else "cpu"
except ImportError:
    r["device"] = "cpu"
r["gpu"] = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]) \
    if mode == "gpu" else None
r["nccl"] = run(["python3", "-c", "import torch;print('.'.join(map(str, torch.cuda.nccl.version())))"]) \
    if mode == "gpu" else None
r["cores"] = os.cpu_count()
for f in sorted(glob.glob(f"{res}/stage_*.json")):
    r["stages"][os.path.basename(f)[6:-5]] = load(f)
# On a CPU, fp16 (and bf16 without oneDNN's kernel) are refused with a config error (exit 2): expected there.
for p in ("fp16", "bf16"):
    st = r["stages"].get(f"train_{p}")
    if mode == "smoke" and st and st["rc"] == 2:
        st["status"] = "refused"
train = {}
for p in precisions:
    rows = []
    path = f"{res}/run_{p}/metrics.jsonl"
    if os.path.exists(path):
        rows = [json.loads(l) for l in open(path) if l.strip()]
    valid = [x["valid_ppl"] for x in rows if "valid_ppl" in x]
    tps = [x["tokens_per_s"] for x in rows if "tokens_per_s" in x]
    env = load(f"{res}/run_{p}/environment.json") or {}
    train[p] = {"status": r["stages"].get(f"train_{p}", {}).get("status"), "valid_ppl": valid[-1] if valid else None,
                "tokens_per_s": sum(tps[1:]) / len(tps[1:]) if len(tps) > 1 else (tps[0] if tps else None),
                "backend": env.get("backend"), "device": env.get("device"), "gpus": env.get("gpus")}
ppl = [v["valid_ppl"] for v in train.values() if v["valid_ppl"]]
r["figures"]["train"] = train
if len(ppl) > 1:
    r["figures"]["train_valid_ppl_spread"] = max(ppl) / min(ppl) - 1
for f in sorted(glob.glob(f"{res}/bench_*.json")):
    b = load(f)
    if b:
        r["figures"][os.path.basename(f)[:-5]] = {"config": b.get("config"), "ratios": b.get("ratios")}
r["figures"]["allreduce"] = load(f"{res}/allreduce.json")
r["figures"]["translate"] = load(f"{res}/translate.json")
r["figures"]["onmt_compare"] = load(f"{res}/onmt/compare.json")
junit = f"{res}/cuda_junit.xml"
if os.path.exists(junit):
    import xml.etree.ElementTree as ET
    cases = ET.parse(junit).getroot().iter("testcase")
    r["figures"]["cuda_tests"] = {c.get("name"): c.get("status") for c in cases}
json.dump(r, open(out, "w"), indent=1)
if quiet:
    sys.exit(0)
print(f"gpu_check ({mode}): {r['device']}, {total} s; stages: " +
      ", ".join(f"{k} {v['status']}" for k, v in r["stages"].items() if v))
for p, v in train.items():
    if v["status"] is None:  # not run (--stages)
        continue
    print(f"  train {p}: {v['status']}, valid ppl {v['valid_ppl']}, {v['tokens_per_s']} tok/s, {v['backend']} on {v['device']}")
for k, v in r["figures"].items():
    if k.startswith("bench_") and v.get("ratios"):
        print(f"  {k}: " + ", ".join(f"{x['precision']} tern {x['tern_tokens_per_s']:.0f} eager {x['eager_tokens_per_s']:.0f} "
                                     f"({x['ratio']:.2f}x)" for x in v["ratios"]))
for x in r["figures"].get("translate") or []:
    print(f"  translate beam {x['beam']} batch {x['batch']}: {x['sentences_per_s']:.1f} sentences/s, "
          f"BLEU {x['bleu']:.2f}, {x['device']} {x['precision']}")
c = r["figures"].get("onmt_compare")
if c:
    t, b = c["translate_sentences_per_s"], c["bleu"]
    print(f"  against OpenNMT-py ({c['device']}, {c['steps']} steps): train {c['train_tokens_per_s']['ratio']:.2f}x; "
          + ", ".join(f"decode {k[6:]} {t[k]:.2f}x (BLEU {b['tern_' + k[6:]]:.2f} vs {b['opennmt_py']:.2f})"
                      for k in t if k.startswith("ratio_")))
bad = [k for k, v in r["stages"].items() if not v or v["status"] not in ("ok", "skipped", "refused")]
if bad:
    print("gpu_check: stages that did not pass: " + ", ".join(bad) + f" (log: {out[:-5]}.log)")
sys.exit(1 if bad else 0)
PY

say() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }
# stage NAME LIMIT_S COMMAND...: runs COMMAND with a time limit, its output into the log; records status and time.
stage() {
  local name=$1 limit=$2
  shift 2
  if [ "$STAGES" != all ] && [[ ",$STAGES," != *",$name,"* ]] && [[ ",$STAGES," != *",${name%%_*},"* ]]; then
    return 0  # not asked for (--stages)
  fi
  local left=$((BUDGET - ($(date +%s) - T_START)))
  if [ "$left" -lt 20 ]; then
    say "stage $name: skipped, ${left}s of the ${BUDGET}s budget left"
    echo '{"status": "skipped", "rc": 0, "seconds": 0, "why": "time budget"}' > "$RES/stage_$name.json"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "stage $name (limit ${limit}s)"
  local t0 rc status
  t0=$(date +%s%N)
  if declare -F "$1" >/dev/null; then  # a function of this script (exported): run it in a bash under the limit
    timeout --kill-after=10 "$limit" bash -c "$1" >> "$LOG" 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
  fi
  rc=$?
  status=ok
  [ $rc -ne 0 ] && status=failed
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status=timeout
  [ $rc -eq 77 ] && status=skipped
  python3 -c 'import json,sys; json.dump({"status": sys.argv[2], "rc": int(sys.argv[3]), "seconds": round(float(sys.argv[4]), 1)}, open(sys.argv[1], "w"))' \
    "$RES/stage_$name.json" "$status" "$rc" "$((($(date +%s%N) - t0) / 1000000)).0e-3"
  say "stage $name: $status (exit $rc)"
  python3 "$RES/report.py" "$RES" "$OUT/gpu_check.json" "$MODE" "$TERN" "$(($(date +%s) - T_START))" \
    "${PRECISIONS[@]}" --quiet > /dev/null 2>&1 || true
  return 0
}

if [ "$MODE" = gpu ]; then
  BUILD=$ROOT/build-gpu
  JOBS=$(nproc)
  TRAIN_STEPS=${TRAIN_STEPS:-400}
  PRECISIONS=(fp32 fp16 bf16)
  BENCH_ARGS=()
  CORPUS=$ROOT/.gpu_bundle/bible.h5
  TRAIN_CONFIG=configs/bible.yaml
  DEVICE_SETS=(--set train.device=cuda --set distributed.backend=nccl)
else
  BUILD=${BUILD:-$ROOT/build}
  JOBS=2
  TRAIN_STEPS=20
  PRECISIONS=(fp32 fp16 bf16)  # fp16 (and bf16 on a CPU without its kernels) are refused on a CPU: recorded so
  BENCH_ARGS=(-- --batch 4 --src-len 6 --tgt-len 6 --src-vocab 64 --tgt-vocab 64 --warmup 1 --steps 2)
  CORPUS=$RES/smoke.h5
  TRAIN_CONFIG=$RES/smoke.yaml
  DEVICE_SETS=(--set train.device=cpu --set distributed.backend=mpi --set train.threads=1)
fi
TERN=$BUILD/cli/tern
export MODE ROOT BUILD JOBS RES TERN OUT

# --- deps: what the machine lacks, from the bundle's .deb files -------------------------------------------------
deps() {
  local prefix=$ROOT/.gpu_bundle/prefix need=()
  pkg-config --exists sentencepiece 2>/dev/null || need+=(libsentencepiece0 libsentencepiece-dev)
  [ -f /usr/include/nlohmann/json.hpp ] || need+=(nlohmann-json3-dev)
  [ -f /usr/include/xxhash.h ] || need+=(libxxhash0 libxxhash-dev)
  [ -f /usr/include/CLI/CLI.hpp ] || need+=(libcli11-dev)
  [ -f /usr/include/unicode/uchar.h ] || need+=(libicu72 libicu-dev)
  echo "missing here: ${need[*]:-nothing}"
  mkdir -p "$prefix"
  for p in "${need[@]}"; do
    local deb
    deb=$(ls "$ROOT"/.gpu_bundle/debs/"${p}"_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { echo "no .deb for $p in .gpu_bundle/debs: run scripts/gpu_bundle.sh"; return 1; }
    dpkg -x "$deb" "$prefix"
  done
  # The .pc files say prefix=/usr: point them at the unpacked tree.
  find "$prefix" -name '*.pc' -exec sed -i "s|^prefix=/usr|prefix=$prefix/usr|" {} +
}
export -f deps
if [ "$MODE" = gpu ]; then
  stage deps 60 deps
  PREFIX=$ROOT/.gpu_bundle/prefix/usr
  export CMAKE_PREFIX_PATH=$PREFIX${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export PKG_CONFIG_PATH=$PREFIX/lib/x86_64-linux-gnu/pkgconfig:$PREFIX/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$PREFIX/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export CPATH=$PREFIX/include${CPATH:+:$CPATH}
fi

# --- build --------------------------------------------------------------------------------------------------------
build() {
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  # smoke: the build tree CI already configured, left as it is (a configure would change its build type)
  if [ "$MODE" = gpu ]; then
    cmake -S "$ROOT" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON || return 1
  fi
  cmake --build "$BUILD" -j "$JOBS" --target tern tern_tests tern_cuda_tests tern_ckpt_diff
}
export -f build
stage build $([ "$MODE" = gpu ] && echo 360 || echo 600) build

# --- tests --------------------------------------------------------------------------------------------------------
tests() {
  if [ "$MODE" = smoke ]; then  # inside ctest already: the same tests run directly (they skip without a GPU)
    "$BUILD/tests/tern_cuda_tests" --gtest_brief=1 || return 1
    local rc=0
    python3 tests/cuda/cuda_train.py || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 77 ]
    return
  fi
  (cd "$BUILD" && ctest -L cuda --output-on-failure --timeout 300 --output-junit "$RES/cuda_junit.xml") || return 1
  "$BUILD/tests/tern_tests" --gtest_brief=1
}
export -f tests
export TERN TERN_CKPT_DIFF=$BUILD/tests/tern_ckpt_diff
stage tests $([ "$MODE" = gpu ] && echo 240 || echo 120) tests

# --- train: the same config in each precision through NCCL (smoke: MPI on the CPU, a tiny corpus) ---------------
if [ "$MODE" = smoke ]; then
  python3 - "$RES" <<'PY'
import random, sys
d = sys.argv[1]
words = "the king said unto him and they went into city of god light earth water land people house day night".split()
rng = random.Random(0)
src = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(300)]
open(f"{d}/s.en", "w").write("".join(s + " .\n" for s in src))
open(f"{d}/s.es", "w").write("".join(" ".join("el_" + w for w in reversed(s.split())) + " .\n" for s in src))
open(f"{d}/smoke.yaml", "w").write(
    "model: {cell: lstm, layers: 1, embedding: 16, hidden: 16, dropout: 0.0}\n"
    "data: {corpus: CORPUS, batch_tokens: 300}\n"
    "optim: {lr: 0.01, schedule: constant, warmup_steps: 0}\n"
    "train: {run_dir: RUN, max_steps: 20, log_every: 5, valid_every: 10, save_every: 20}\n")
PY
  "$TERN" prepare --train-src "$RES/s.en" --train-tgt "$RES/s.es" --valid-fraction 0.1 --test-fraction 0.1 \
    --vocab-size 48 --out "$CORPUS" >> "$LOG" 2>&1
fi
for p in "${PRECISIONS[@]}"; do
  stage "train_$p" $([ "$MODE" = gpu ] && echo 150 || echo 60) \
    mpirun -np 1 "$TERN" train "$TRAIN_CONFIG" --set data.corpus="$CORPUS" --set train.run_dir="$RES/run_$p" \
    --set train.max_steps="$TRAIN_STEPS" --set train.valid_every="$TRAIN_STEPS" --set train.precision="$p" \
    "${DEVICE_SETS[@]}" --no-progress
done

# --- bench: tern against eager PyTorch, each precision, in one run ------------------------------------------------
BENCH_PRECISIONS=(fp32 fp16 bf16)
[ "$MODE" = smoke ] && BENCH_PRECISIONS=(fp32)
bench_config() {  # NAME CONFIG [--set ...]
  local name=$1 config=$2
  shift 2
  local sets=("$@")
  if [ "$MODE" = smoke ]; then  # tiny shapes of the same architecture
    sets+=(--set model.layers=1 --set model.embedding=16 --set model.hidden=16 --set train.device=cpu)
  fi
  stage "bench_$name" $([ "$MODE" = gpu ] && echo 150 || echo 90) \
    python3 bench/train_vs_eager.py "$config" --tern "$TERN" --precisions "${BENCH_PRECISIONS[@]}" "${sets[@]}" \
    --json "$RES/bench_$name.json" "${BENCH_ARGS[@]}" \
    $([ "$MODE" = gpu ] && [ "$name" = lm ] && echo "-- --tgt-vocab 32000 --tgt-len 64")
}
bench_config lm configs/bench_lm.yaml
bench_config seq2seq_feed configs/bench_seq2seq.yaml --set model.input_feeding=true
bench_config seq2seq_nofeed configs/bench_seq2seq.yaml --set model.input_feeding=false

# --- allreduce ----------------------------------------------------------------------------------------------------
stage allreduce 60 mpirun -np 1 "$TERN" bench allreduce --sizes 1048576 67108864 --iters 10 --json "$RES/allreduce.json"

# --- translate: decoding speed of the fp32 run's checkpoint on the device ------------------------------------------
if [ -f "$RES/run_fp32/latest" ]; then
  stage translate $([ "$MODE" = gpu ] && echo 90 || echo 60) "$TERN" bench translate \
    --checkpoint "$RES/run_fp32/$(cat "$RES/run_fp32/latest")" --data "$CORPUS" --beams 1 5 --batches 64 \
    $([ "$MODE" = smoke ] && echo "--limit 20 --device cpu") --json "$RES/translate.json"
fi

# --- onmt: tern against OpenNMT-py 3.5.1, both on the device -----------------------------------------------------
onmt_compare() {
  local wheels=${ONMT_WHEELS:-$ROOT/.gpu_bundle/wheels} out=$RES/onmt
  if [ "$MODE" = smoke ] && [ -z "${ONMT_WHEELS:-}" ]; then
    echo "onmt: skipped on the CPU (set ONMT_WHEELS to wheels of opennmt-py, configargparse, pyonmttok, sentencepiece)"
    return 77
  fi
  compgen -G "$wheels/OpenNMT_py-*.whl" > /dev/null || { echo "onmt: no OpenNMT-py wheel in $wheels: run scripts/gpu_bundle.sh"; return 1; }
  local rc=0
  if [ "$MODE" = gpu ]; then
    DEVICE=cuda ONMT_WHEELS=$wheels CORPUS=$ROOT/.gpu_bundle/bible.h5 REF=$ROOT/.gpu_bundle/test.es OUT=$out STEPS=850 \
      REPEATS=3 bench/onmt_compare.sh || rc=$?
  else  # the same path on the CPU (by hand: it needs the Bible corpus and wheels for this Python), 30 steps, 1 round
    DEVICE=cpu ONMT_WHEELS=$wheels OUT=$out STEPS=30 REPEATS=1 bench/onmt_compare.sh || rc=$?
  fi
  mkdir -p "$OUT/onmt"  # the figures and logs come back; the models and the exported corpus stay behind
  cp "$out"/*.json "$out"/*.log "$OUT/onmt/" 2> /dev/null
  return $rc
}
export -f onmt_compare
stage onmt $([ "$MODE" = gpu ] && echo 300 || echo 240) onmt_compare

# --- the report (also rewritten after every stage, so a run cut short still leaves its JSON) ------------------
python3 "$RES/report.py" "$RES" "$OUT/gpu_check.json" "$MODE" "$TERN" "$(($(date +%s) - T_START))" "${PRECISIONS[@]}" | tee -a "$LOG"
rc=${PIPESTATUS[0]}
rm -rf "$RES"
exit "$rc"
