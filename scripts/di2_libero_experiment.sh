#!/usr/bin/env bash
# DI² comparison on LIBERO scripted demos (libero_object tasks 0 and 1), sized for a shared 2-core CPU.
# Usage: scripts/di2_libero_experiment.sh [seeds] [extra overrides...]
# Step 1 (demos, 17 min here): the scripted experts on sampled placements (disjoint from the official
# init states used for evaluation), RGB + metric depth of agentview and wrist at 64 px. Step 2: the
# experiment (every seed trained + scored offline first, then closed-loop RGB-only evaluation).
# Cached demos, stages and evaluations are reused, so re-running resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${1:-0,1,2}"; shift || true
export MUJOCO_GL=egl OMP_NUM_THREADS=1
DATA=outputs/di2_libero/data
if [ ! -f "$DATA/libero_object_0-1_64px_10/libero_object.hdf5" ]; then
  nice -n 10 .venv/bin/policystack libero-demos --suite libero_object --tasks 0,1 --episodes 10 \
    --cameras agentview,wrist --image-size 64 --depth --workers 0 --no-official \
    --out "$DATA/libero_object_0-1_64px_10"
fi
exec nice -n 10 .venv/bin/policystack di2 experiment --figure docs/results/figures/di2_libero.png \
  benchmark=libero tasks=libero_object:0,libero_object:1 image_size=64 n_demos=10 seeds="$SEEDS" \
  n_eval_episodes=2 max_episode_steps=220 output_dir=outputs/di2_libero/exp data_dir="$DATA" \
  train.policy.cameras=agentview,wrist train.policy.text_encoder=minilm train.policy.window=2 \
  train.batch_size=16 train.val_every=5 train.token_copies=1 train.eval_interval=100 \
  train.steps_rgb=1000 train.steps_rgbd=400 train.steps_dcm=1000 train.steps_dac=300 train.steps_di2=300 "$@"
