#!/usr/bin/env bash
# DI² comparison on Meta-World RGB-D demos (the LIBERO version: scripts/di2_libero_experiment.sh; results in docs/results/di2.md).
# Usage: scripts/di2_metaworld_experiment.sh [seeds] [extra overrides...]
#   scripts/di2_metaworld_experiment.sh 0,1,2            # everything (cached results are reused)
#   scripts/di2_metaworld_experiment.sh 1 &              # one seed per process (then run 0,1,2 to summarise)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${1:-0,1,2}"; shift || true
export MUJOCO_GL=egl OMP_NUM_THREADS=1
exec .venv/bin/policystack di2 experiment --figure docs/results/figures/di2_metaworld.png \
  benchmark=metaworld tasks=button-press-topdown-v3,drawer-close-v3,window-open-v3 image_size=64 \
  n_demos=20 seeds="$SEEDS" n_eval_episodes=10 max_episode_steps=150 \
  output_dir=outputs/di2_pilot data_dir=outputs/di2_data \
  train.policy.cameras=corner2,gripperPOV train.policy.text_encoder=minilm train.policy.window=4 \
  train.batch_size=16 train.steps_rgb=1500 train.steps_rgbd=1000 train.steps_dcm=3000 train.steps_dac=1000 \
  train.steps_di2=600 "$@"
