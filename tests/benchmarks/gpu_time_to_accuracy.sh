#!/usr/bin/env bash
# Time to accuracy on one GPU, the day one is lent: the captioner's default recipe and the GPU levers (bf16
# autocast, torch.compile, larger batches), each row written as JSON beside the others. One call of at most 8
# minutes on an H100: four recipes, each stopped after 110 s if it has not finished its epochs.
#
#   bash tests/benchmarks/gpu_time_to_accuracy.sh prepare        # here: MNIST compressed into .gpu-data/ (ignored)
#   bash tests/benchmarks/gpu_time_to_accuracy.sh run OUT_FOLDER # there: every recipe, rows into OUT_FOLDER/*.json
#
# The GPU machine gets a copy of the working tree (not ../shared), so `prepare` packs MNIST's four files (11 MB
# gzipped) into .gpu-data/, which git ignores and the call carries. docs/results.md's table takes the rows.
set -euo pipefail
cd "$(dirname "$0")/../.."

case "${1:-}" in
prepare)
  : "${CROSSMODAL_DATA:?set CROSSMODAL_DATA to the folder holding MNIST/raw/}"
  mkdir -p .gpu-data/MNIST/raw
  for f in "$CROSSMODAL_DATA"/MNIST/raw/*-ubyte; do gzip -c "$f" > ".gpu-data/MNIST/raw/$(basename "$f").gz"; done
  grep -qx '/.gpu-data/' .git/info/exclude 2>/dev/null || echo '/.gpu-data/' >> .git/info/exclude
  du -sh .gpu-data
  ;;
run)
  out="${2:?give the folder for the rows}"
  mkdir -p "$out"
  data="$(mktemp -d)"
  mkdir -p "$data/MNIST/raw"
  for f in .gpu-data/MNIST/raw/*.gz; do gunzip -c "$f" > "$data/MNIST/raw/$(basename "$f" .gz)"; done
  export CROSSMODAL_DATA="$data" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
  python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
  bench() {  # name, then the flags of one recipe
    local name="$1"; shift
    echo "== $name: $*"
    timeout 110 python3 tests/benchmarks/time_to_accuracy.py --device cuda --eval-every 50 --json "$out/$name.json" \
      "$@" 2>&1 | grep -v "it/s\]\|step/s\]" || echo "$name: did not finish in 110 s"
  }
  bench default
  bench bf16 --bf16
  bench compile-bf16 --compile --bf16
  bench batch512 --batch-size 512 --lr 8e-3 --warmup-steps 50 --epochs 8 --compile --bf16
  ;;
*)
  echo "usage: bash tests/benchmarks/gpu_time_to_accuracy.sh prepare | run OUT_FOLDER" >&2
  exit 2
  ;;
esac
