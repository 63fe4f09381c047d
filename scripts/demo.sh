#!/usr/bin/env bash
# The demo: phantom studies -> training -> exported model -> reports for unseen studies ->
# evaluation with baselines. Everything goes under the folder given (default runs/demo).
set -euo pipefail
out="${1:-runs/demo}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg

if [ -d "$out" ]; then
  echo "removing the previous demo run in $out"
  rm -rf "$out"
fi

echo "== 1/5 phantom studies: training set and an unseen held-out set"
cxr synth "$out/data/train" --patients 300 --seed 1 --size 256
cxr synth "$out/data/heldout" --patients 24 --seed 2 --size 256

echo "== 2/5 training (configs/experiment/demo.yaml)"
cxr fit --config configs/experiment/demo.yaml

echo "== 3/5 export the best checkpoint (tube/line thresholds chosen on the validation split)"
best=$(ls -t "$out"/train/checkpoints/best*.ckpt | head -n 1)
cxr export "$best" -o "$out/model" --data configs/data/phantom.yaml

echo "== 4/5 reports for the held-out studies"
# The reports file gives each study's indication and its prior study's report, as a RIS would.
cxr generate "$out/data/heldout" --model "$out/model" -o "$out/reports" --sr \
  --prior-reports "$out/data/heldout/reports.jsonl"

echo "== 5/5 evaluation against the phantom ground truth, with baselines"
# Model-based scorers run where CXR_SCORERS names their weights folders (NAME=DIR,...); without
# it the table lists each as unavailable, with the reason.
scorers=()
if [ -n "${CXR_SCORERS:-}" ]; then scorers=(--scorer "$CXR_SCORERS"); fi
cxr evaluate --predictions "$out/reports/reports.jsonl" \
  --references "$out/data/heldout/reports.jsonl" --references "$out/data/heldout/labels.csv" \
  --baselines --train-references "$out/data/train/reports.jsonl" \
  -o "$out/eval" "${scorers[@]}"

echo
echo "demo outputs in $out/: data/ train/ model/ reports/ eval/"
echo "  reports: $out/reports/reports.jsonl (and reports.csv, sr/, errors.jsonl)"
echo "  metrics: $out/eval/metrics.json"
