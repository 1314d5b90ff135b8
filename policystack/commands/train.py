"""`policystack train`: train any registered policy on HDF5 episodes."""

from policystack.commands._common import add_overrides, build_config

NAME = "train"
HELP = "train a policy on HDF5 episodes (typed config, atomic checkpoints, resume=true)"
DESCRIPTION = """Train a registered policy (policy.type=bc by default) on HDF5 episodes.

The full config is saved as <output_dir>/config.json; checkpoints go to
<output_dir>/checkpoints/{<step>,last}; the loss curve to <output_dir>/loss.png.
Examples:
  policystack train dataset=data/reach.hdf5 output_dir=runs/reach policy.modalities=state
  policystack train dataset=data/reach_px.hdf5 output_dir=runs/reach_px policy.modalities=state,images
  policystack train output_dir=runs/reach resume=true          # continue an interrupted run
  policystack train --config runs/reach/config.json steps=10000 output_dir=runs/reach2
"""


def add_arguments(p) -> None:
    from policystack.training import TrainConfig
    p.add_argument("--config", help="start from a saved config.json (overrides apply on top)")
    add_overrides(p, TrainConfig)


def run(args) -> int:
    from pathlib import Path

    from policystack import config as cfgmod
    from policystack.training import TrainConfig, train
    base = None
    if args.config:
        base = cfgmod.load_json(TrainConfig, args.config)
    elif any(o.startswith("resume=") and o.split("=", 1)[1].lower() in ("1", "true", "yes") for o in args.overrides):
        out = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("output_dir=")), None)
        if out and (Path(out) / "config.json").exists():  # resume reuses the run's own config
            base = cfgmod.load_json(TrainConfig, Path(out) / "config.json")
    cfg = build_config(TrainConfig, args, base)
    run_dir = train(cfg)
    print(f"checkpoint: {run_dir / 'checkpoints' / 'last' / 'pretrained'}")
    print(f"loss curve: {run_dir / 'loss.png'}")
    return 0
