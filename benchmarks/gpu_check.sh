#!/usr/bin/env bash
# The CUDA paths of the PyTorch runner and the GPU throughput of the generated
# ResNet18 against hand-written ones, in one go (for a lent GPU machine):
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# 1. `archc train` on digits: bf16 autocast + channels-last (the default on a GPU),
#    fp32, torch.compile, and DistributedDataParallel over NCCL under torchrun (one
#    GPU, one process); each must finish with exit 0 and validate above 0.95.
# 2. benchmarks/train_throughput.py: the runner against a minimal loop on the GPU.
# 3. benchmarks/torch_step.py: generated vs hand-written ResNet18, fp32 eager, and
#    bf16 + channels-last, eager and torch.compile, batch 256.
# Needs archc's core dependencies, torch with CUDA, numpy, scikit-learn, matplotlib.
set -u
out=${1:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}
summary="$out/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$summary"
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'bf16', torch.cuda.is_bf16_supported())" | tee -a "$summary"

train() {  # name, then archc train arguments
  local name=$1; shift
  local t0=$(date +%s%N)
  timeout 300 "$@" > "$out/$name.log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  local last=$(grep -E "^epoch [0-9]+/|top-1" "$out/$name.log" | tail -1)
  note "$(printf '%-14s exit %s  %4d.%01ds  %s' "$name" "$rc" $((ms / 1000)) $((ms % 1000 / 100)) "$last")"
  grep -E "engine|PyTorch .* on cuda" "$out/$name.log" | head -1 | sed 's/^/               /' | tee -a "$summary"
}
common=(specs/digits_cnn.cnn --backend torch --data digits --device cuda)
train digits-auto $py -m archc train "${common[@]}" --out "$out/runs/auto"
train digits-fp32 $py -m archc train "${common[@]}" --precision fp32 --out "$out/runs/fp32"
train digits-compile $py -m archc train "${common[@]}" --compile --out "$out/runs/compile"
train digits-ddp $py -m torch.distributed.run --standalone --nproc_per_node 1 -m archc train \
  "${common[@]}" --out "$out/runs/ddp"
train digits-eval $py -m archc evaluate specs/digits_cnn.cnn --weights "$out/runs/auto" --data digits --device cuda

note "--- runner vs minimal loop (ResNet18, synthetic 32x32x3)"
timeout 300 $py benchmarks/train_throughput.py --device cuda --backends torch --steps 40 --batch 256 --rounds 4 2>&1 | tee "$out/throughput.log" | tail -6 | tee -a "$summary"
note "--- generated vs hand-written ResNet18, fp32 eager"
timeout 300 $py benchmarks/torch_step.py --batch 256 --steps 20 --rounds 6 --no-compile 2>&1 | tee "$out/step_fp32.log" | tail -6 | tee -a "$summary"
note "--- generated vs hand-written ResNet18, bf16 + channels-last, eager and compiled"
timeout 420 $py benchmarks/torch_step.py --batch 256 --steps 20 --rounds 6 --bf16 --channels-last 2>&1 | tee "$out/step_bf16.log" | tail -12 | tee -a "$summary"
