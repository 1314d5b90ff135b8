#!/usr/bin/env bash
# DI² comparison on Meta-World RGB-D demos (the LIBERO version: scripts/di2_libero_experiment.sh; results in docs/results/di2.md).
# A base RGB policy is pretrained once on 10 *other* Meta-World tasks (the stand-in for the paper's
# RoboFlamingo checkpoint); RGB-RF and RGB-D-RF are both fine-tuned from it on the 3 target tasks.
# Usage: scripts/di2_metaworld_experiment.sh [seeds] [extra overrides...]
#   scripts/di2_metaworld_experiment.sh 0,1,2            # everything (cached results are reused)
#   scripts/di2_metaworld_experiment.sh 1 &              # one seed per process, once the shared pretrain stage exists
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${1:-0,1,2}"; shift || true
export MUJOCO_GL=egl OMP_NUM_THREADS=1
exec .venv/bin/policystack di2 experiment --figure docs/results/figures/di2_metaworld.png \
  benchmark=metaworld tasks=button-press-topdown-v3,drawer-close-v3,window-open-v3 image_size=64 \
  pretrain_tasks=reach-v3,push-v3,drawer-open-v3,button-press-v3,door-open-v3,window-close-v3,faucet-open-v3,handle-press-v3,coffee-button-v3,plate-slide-v3 \
  n_demos=20 n_pretrain_demos=10 seeds="$SEEDS" n_eval_episodes=20 max_episode_steps=150 \
  conditions=rgb,rgbd_nodepth,dcm_nodac,di2,rgbd_gt \
  output_dir=outputs/di2_mw_pretrain data_dir=outputs/di2_data \
  train.policy.cameras=corner2,gripperPOV train.policy.text_encoder=minilm train.policy.window=4 \
  train.batch_size=16 train.steps_pretrain=3000 train.steps_rgb=1500 train.steps_rgbd=1500 \
  train.steps_dcm=10000 train.steps_dac=1000 train.steps_di2=1000 "$@"
