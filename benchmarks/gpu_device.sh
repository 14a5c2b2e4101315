#!/usr/bin/env bash
# The prepared GPU check (MoE expert offloading, fine-tuning with --offload cpu), one call on a
# lent CUDA machine:
#   bash benchmarks/gpu_device.sh OUTDIR [SHAPE_DIR]
# 1. the CUDA test of the MoE engine and a tiny MoE model on CUDA (does the stream/event path work; fused and
# loop expert compute), 2. benchmarks/gpu_finetune.py
# (`--offload cpu` vs `none`), 3. benchmarks/gpu_moe.py at OLMoE sizes, slow tier in pinned CPU
# memory, bf16 and INT4 experts (fused grouped-GEMM compute; `moe_loop`: the per-expert loop). Each part has its own time limit and writes OUTDIR/<part>.json
# and .log, so a failing part leaves the others' figures. Where the bundled GGUF is not
# installed, SHAPE_DIR (made with `python benchmarks/gpu_finetune.py --write-shape DIR`) gives
# the model shape for the fine-tuning part; EXTRA_SITE names a folder of pure-Python packages
# the machine lacks (the fine-tuning export needs `gguf`).
set -u
out=${1:?usage: gpu_device.sh OUTDIR [SHAPE_DIR]}
shape=${2:-}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH=${EXTRA_SITE:+$EXTRA_SITE:}${PYTHONPATH:-}
{ nvidia-smi -L; "$py" -c 'import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)'; } >"$out/env.log" 2>&1

part() {  # name, seconds, command...: stdout -> name.json (name.log for a *_check), stderr -> name.log
    local name=$1 limit=$2 t0=$SECONDS rc stdout; shift 2
    case $name in *_check) stdout=$out/$name.log ;; *) stdout=$out/$name.json ;; esac
    timeout "$limit" "$@" >"$stdout" 2>>"$out/$name.log"; rc=$?
    echo "$name rc=$rc $((SECONDS - t0))s" | tee -a "$out/env.log"
    tail -c 600 "$out/$name.log"; echo
    return $rc
}

part cuda_check 60 "$py" -m pytest -q -p no:cacheprovider tests/inference/moe/test_moe_exactness.py -k cuda
part moe_check 60 "$py" benchmarks/gpu_moe.py --json --layers 2 --experts 8 --hidden 256 --expert-dim 128 \
    --top-k 2 --vocab 512 --heads 4 --kv-heads 4 --tokens 4 --prompt-tokens 8 --budgets 2x --quants none,int4 \
    --computes auto,loop
smoke=$?  # the OLMoE-sized run only after the tiny one worked
part finetune 240 "$py" benchmarks/gpu_finetune.py --steps 8 --rounds 2 ${shape:+--shape "$shape"} \
    || tail -n 40 "${TMPDIR:-/tmp}"/memex-gpu-ft-*/*/child.log >"$out/finetune_child.log" 2>&1
if [ "$smoke" -eq 0 ]; then
    part moe 260 "$py" benchmarks/gpu_moe.py --json --budgets 2x,4x --tokens 32 --prompt-tokens 64 --quants none,int4
    # the fused path (grouped GEMM per wave; auto above) against the per-expert loop, bf16 2x only
    part moe_loop 120 "$py" benchmarks/gpu_moe.py --json --budgets 2x --tokens 32 --prompt-tokens 64 --quants none \
        --computes loop --policies lru,fate_plus,resident
fi
