#!/usr/bin/env bash
# A prepared GPU check: one command, under 8 minutes on one H100/H200, every figure as JSON in OUTDIR.
#
#   bash bench/gpu_check.sh OUTDIR [--tiny] [--corpora DIR] [--peak-tflops N] [--budget SECONDS]
#
# (a) bf16 tokens/s and MFU of our pretraining loop on a 1B-class LLaMA with random weights
#     (bench/pretrain_throughput.py --models llama-1b: TinyLlama-1.1B's shape, block 2048, 262,144-token
#     global batch, gradient checkpointing only if the micro-batch does not fit), against the 40% MFU of
#     well-tuned trainers; MFU = tokens/s x (6 N + 12 L d T) / the GPU's dense bf16 peak.
# (b) bench/extension_pays.py at GPU scale: SmolLM2-135M base vs mean vs distill, two epochs of the shared
#     Japanese training text (all documents) for the extended arms with 10% English replay, equal FLOPs,
#     block 1024 x 64; the steps are scaled down alike if a probe run says they would not fit the time left.
#     Its merge and init-model run on the CPU cores while (a) has the GPU.
# Each part runs under `timeout`; whatever finished is summarised in OUTDIR/gpu_check.json (machine, torch
# and CUDA versions, (a) and (b) figures or why a part did not finish), with each part's log beside it.
# --tiny: the same path on the CPU with a pico model and a handful of steps (a few minutes on 2 cores).
# --corpora: the folder of <lang>/<name>.txt corpora (default: shared/corpora in or beside the checkout);
# without it part (b) is "skipped: no corpora". --budget: seconds for the whole check (default 450).
set -euo pipefail

usage() { echo "usage: bash bench/gpu_check.sh OUTDIR [--tiny] [--corpora DIR] [--peak-tflops N] [--budget SECONDS]" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="" TINY=0 CORPORA="" PEAK="" BUDGET=""
while [ $# -gt 0 ]; do
    case "$1" in
        --tiny) TINY=1 ;;
        --corpora) [ $# -ge 2 ] || usage; CORPORA=$2; shift ;;
        --peak-tflops) [ $# -ge 2 ] || usage; PEAK=$2; shift ;;
        --budget) [ $# -ge 2 ] || usage; BUDGET=$2; shift ;;
        -h|--help) usage ;;
        -*) echo "error: unknown option $1" >&2; usage ;;
        *) [ -z "$OUT" ] || usage; OUT=$1 ;;
    esac
    shift
done
[ -n "$OUT" ] || usage
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then PY=$ROOT/.venv/bin/python
else PY=python3; fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
cd "$ROOT"

CORES=$(nproc 2>/dev/null || echo 2)
PREP_THREADS=$(( CORES > 4 ? CORES - 2 : CORES ))   # (a) keeps two cores to drive the GPU
if [ "$TINY" = 1 ]; then
    BUDGET=${BUDGET:-240}; A_LIMIT=100; DEVICE=cpu
    A_ARGS=(--models pico --steps 3 --skip 1)
    B_ARGS=(--pico-model --merge-max-docs 300 --vocab-size 1000 --max-docs 10 --block-size 64 --batch-size 4
            --eval-every 4 --eval-max-bytes 2000 --epochs 1 --distill-steps 2 --distill-contexts 1 --probe-steps 5)
else
    BUDGET=${BUDGET:-450}; A_LIMIT=200; DEVICE=cuda
    A_ARGS=(--models llama-1b --steps 8 --skip 2)
    B_ARGS=(--max-docs 0 --block-size 1024 --batch-size 64 --micro-batch-size 16 --eval-every 8
            --eval-max-bytes 100000 --epochs 2 --lr 3e-4 --new-rows-lr 1e-3)
fi
PREP_LIMIT=$(( BUDGET * 2 / 3 ))   # merge + init-model; what is left after it is (b)'s training time
[ -z "$PEAK" ] || A_ARGS+=(--peak-tflops "$PEAK")
echo "gpu_check: ${OUT} (tiny=${TINY}, budget ${BUDGET}s, python ${PY})"

# --- the machine ---------------------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L 2>&1 | tee "$OUT/nvidia-smi.txt" || true
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$OUT/nvidia-smi.txt" 2>&1 || true
else
    echo "no nvidia-smi on PATH" | tee "$OUT/nvidia-smi.txt"
fi
"$PY" - "$OUT/env.json" <<'EOF' || echo '{"error": "python could not report torch"}' >"$OUT/env.json"
import json, os, platform, sys
import torch
info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
if torch.cuda.is_available():
    info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    info["cudnn"] = torch.backends.cudnn.version()
print(json.dumps(info))
json.dump(info, open(sys.argv[1], "w"), indent=2)
EOF
GPU_OK=1
if [ "$DEVICE" = cuda ] && ! grep -q '"cuda_available": true' "$OUT/env.json"; then
    GPU_OK=0; echo "torch sees no GPU: parts (a) and (b) are skipped"
fi

# --- corpora for (b) ---------------------------------------------------------------------------------------
if [ -z "$CORPORA" ]; then
    for c in "$ROOT/shared/corpora" "$ROOT/../shared/corpora"; do
        if [ -f "$c/ja/jaquad_train_wikipedia.txt" ]; then CORPORA=$c; break; fi
    done
fi
HAVE_CORPORA=0
if [ -n "$CORPORA" ] && [ -f "$CORPORA/ja/jaquad_train_wikipedia.txt" ]; then HAVE_CORPORA=1; CORPORA=$(cd "$CORPORA" && pwd); fi
WORK="$OUT/extension_pays_work"
PAYS=(bench/extension_pays.py --corpora "$CORPORA" --work-dir "$WORK" "${B_ARGS[@]}")

# --- (b) preparation on the CPU cores, while (a) has the GPU -----------------------------------------------
PREP_RC=skipped PREP_PID=""
if [ "$GPU_OK" = 1 ] && [ "$HAVE_CORPORA" = 1 ]; then
    echo "(b) merge and init-model in the background (${PREP_THREADS} threads, at most ${PREP_LIMIT}s): $OUT/extension_pays_prepare.log"
    OMP_NUM_THREADS=$PREP_THREADS RAYON_NUM_THREADS=$PREP_THREADS timeout -k 10 "$PREP_LIMIT" \
        "$PY" "${PAYS[@]}" --prepare-only --reuse --threads "$PREP_THREADS" >"$OUT/extension_pays_prepare.log" 2>&1 &
    PREP_PID=$!
fi

# --- (a) throughput and MFU ----------------------------------------------------------------------------------
A_RC=skipped A_SECONDS=0
if [ "$GPU_OK" = 1 ]; then
    echo "(a) our loop's throughput (at most ${A_LIMIT}s): $OUT/throughput.log"
    start=$SECONDS A_RC=0
    timeout -k 10 "$A_LIMIT" "$PY" bench/pretrain_throughput.py "${A_ARGS[@]}" --device "$DEVICE" --no-trainer --runs 1 \
        --json "$OUT/throughput.json" >"$OUT/throughput.log" 2>&1 || A_RC=$?
    A_SECONDS=$(( SECONDS - start ))
    echo "(a) exit ${A_RC} after ${A_SECONDS}s"; tail -n 1 "$OUT/throughput.log" || true
fi

# --- (b) the arms ---------------------------------------------------------------------------------------------
B_RC=skipped B_SECONDS=0 B_LIMIT=0 ARMS=()
if [ -n "$PREP_PID" ]; then
    PREP_RC=0; wait "$PREP_PID" || PREP_RC=$?
    echo "(b) preparation exit ${PREP_RC} at ${SECONDS}s"
    ARMS=(base)
    for arm in mean distill; do
        if [ -f "$WORK/init-$arm/config.json" ]; then ARMS+=("$arm"); fi
    done
    LEFT=$(( BUDGET - SECONDS ))
    B_LIMIT=$LEFT
    if [ "$LEFT" -lt 30 ]; then
        B_RC=no-time
    else
        echo "(b) arms ${ARMS[*]} (at most ${LEFT}s): $OUT/extension_pays.log"
        start=$SECONDS B_RC=0
        timeout -k 10 "$LEFT" "$PY" "${PAYS[@]}" --reuse --arms "${ARMS[@]}" --device "$DEVICE" --threads "$PREP_THREADS" \
            --time-budget "$(( LEFT - 5 ))" --json "$OUT/extension_pays.json" >"$OUT/extension_pays.log" 2>&1 || B_RC=$?
        B_SECONDS=$(( SECONDS - start ))
        echo "(b) exit ${B_RC} after ${B_SECONDS}s"; tail -n 3 "$OUT/extension_pays.log" || true
    fi
fi

# --- the summary ----------------------------------------------------------------------------------------------
"$PY" - "$OUT" <<EOF
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
def load(name):
    try:
        return json.loads((out / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
def tail(name, lines=15):
    try:
        return (out / name).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []
def why(rc, log, limit):
    if rc == "124":
        return f"timed out after {limit} s (log: {log})"
    return f"failed with exit status {rc} (log: {log})"

tiny, gpu_ok, have_corpora = "$TINY" == "1", "$GPU_OK" == "1", "$HAVE_CORPORA" == "1"
summary = {"check": "gpu_check", "tiny": tiny, "budget_seconds": $BUDGET, "seconds": $SECONDS,
           "machine": load("env.json"), "nvidia_smi": tail("nvidia-smi.txt", 20)}
a = load("throughput.json")
part_a = {"status": "skipped: torch sees no GPU" if not gpu_ok else "ok" if "$A_RC" == "0" and a
          else why("$A_RC", "throughput.log", $A_LIMIT), "seconds": $A_SECONDS}
if a:
    part_a.update(model=next(iter(a["results"])), **next(iter(a["results"].values())), mfu_note=a["mfu"])
elif gpu_ok:
    part_a["log_tail"] = tail("throughput.log")
summary["a_throughput"] = part_a
b = load("extension_pays.json")
if not gpu_ok:
    status = "skipped: torch sees no GPU"
elif not have_corpora:
    status = "skipped: no corpora (pass --corpora DIR with ja/ and en/ as in bench/README.md)"
elif "$B_RC" == "no-time":
    status = "skipped: no time left after the preparation (log: extension_pays_prepare.log)"
elif "$B_RC" == "0" and b and b.get("complete"):
    status = "ok"
else:
    status = why("$B_RC", "extension_pays.log", $B_LIMIT)
    if b:
        status += f"; the arms done are summarised: {', '.join(b.get('arms_done', []))}"
part_b = {"status": status, "seconds": $B_SECONDS, "arms_run": "${ARMS[*]:-}".split(),
          "preparation": "ok" if "$PREP_RC" == "0" else "skipped" if "$PREP_RC" == "skipped"
          else why("$PREP_RC", "extension_pays_prepare.log", $PREP_LIMIT)}
if have_corpora and gpu_ok and len(part_b["arms_run"]) < 3:
    part_b["missing_arms"] = "init-model did not finish for " + ", ".join(
        a for a in ("mean", "distill") if a not in part_b["arms_run"])
if b:
    part_b.update({k: b.get(k) for k in ("complete", "arms_done", "plan", "final", "targets", "init_seconds",
                                         "wall_seconds", "machine")})
    part_b["runs"] = {k: {x: v.get(x) for x in ("steps", "wall_seconds", "median_tokens_per_s", "en_end_vs_start")}
                      for k, v in b["runs"].items()}
    part_b["crossing"] = {arm: c["ja"]["crossing"] for arm, c in b["equal_flops"].items()}
    part_b["difference_at_end_ja"] = {arm: c["ja"]["difference_at_end"] for arm, c in b["equal_flops"].items()}
    part_b["full_figures"] = "extension_pays.json"
elif have_corpora and gpu_ok:
    part_b["log_tail"] = tail("extension_pays.log") or tail("extension_pays_prepare.log")
summary["b_extension_pays"] = part_b
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
print(json.dumps({"a": {k: part_a.get(k) for k in ("status", "ours_tokens_per_s", "mfu", "mfu_vs_well_tuned")},
                  "b": {k: part_b.get(k) for k in ("status", "crossing")}}, indent=2))
print(f"wrote {out / 'gpu_check.json'}")
EOF
