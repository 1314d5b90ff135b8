"""`policystack decisionnce`: pretrain the DecisionNCE encoder, evaluate it, compute rewards, LCBC probe."""

from __future__ import annotations

import argparse

NAME = "decisionnce"
HELP = "DecisionNCE: pretrain (torchrun-able), evaluate (retrieval/direction/Spearman), reward, lcbc probe"
DESCRIPTION = """DecisionNCE trajectory-language representation.

  policystack decisionnce pretrain --config cfg.json [name=value ...] [--resume]
      (DDP: torchrun --nproc_per_node N -m policystack.cli decisionnce pretrain ...)
  policystack decisionnce evaluate --data data/dnce/mt50 --out runs/dnce_T ...   (pretrain + held-out metrics)
  policystack decisionnce reward --encoder DIR --data FILE.hdf5 [--episode 0] [--plot out.png]
  policystack decisionnce lcbc --encoder DIR ...                                (frozen-encoder LCBC probe)

Pretrain config fields (name=value overrides):
"""



def add_arguments(p) -> None:
    from policies.decisionnce.configuration_decisionnce import PretrainConfig
    from policystack.config import describe
    p.description = DESCRIPTION + "\n".join(describe(PretrainConfig))
    sub = p.add_subparsers(dest="action", metavar="<action>")
    pt = sub.add_parser("pretrain", help="train the dual encoder")
    pt.add_argument("--config", help="a PretrainConfig JSON file")
    pt.add_argument("--resume", action="store_true", help="continue from <out_dir>/checkpoints/last")
    pt.add_argument("overrides", nargs="*", help="name=value config overrides (e.g. steps=2000 encoder.text_tower=minilm)")
    for name, hlp in (("evaluate", "pretrain (or reuse) and report held-out retrieval / direction / Spearman"),
                      ("lcbc", "LCBC probe: pretrained vs randomly initialised frozen encoder")):
        e = sub.add_parser(name, help=hlp, add_help=False)
        e.add_argument("args", nargs=argparse.REMAINDER)
    r = sub.add_parser("reward", help="per-step rewards of one episode under an instruction")
    r.add_argument("--encoder", required=True, help="a saved encoder directory")
    r.add_argument("--data", required=True, help="an HDF5 episode file")
    r.add_argument("--episode", type=int, default=0)
    r.add_argument("--instruction", default=None, help="default: the episode's own")
    r.add_argument("--image-key", default="observation.images.corner2")
    r.add_argument("--variant", default="T", choices=("P", "T"))
    r.add_argument("--plot", default=None, help="write a PNG of potential / progress / rewards")


def run(args) -> int:
    if args.action == "pretrain":
        from policies.decisionnce.configuration_decisionnce import PretrainConfig
        from policies.decisionnce.train_decisionnce import pretrain
        from policystack.config import apply_overrides, load_json
        cfg = load_json(PretrainConfig, args.config) if args.config else PretrainConfig()
        cfg = apply_overrides(cfg, args.overrides)
        if not cfg.data:
            from policystack.errors import ConfigError
            raise ConfigError("set data=<hdf5 files or folders> (in --config or as an override)")
        out = pretrain(cfg, resume=args.resume)
        print(f"encoder saved at {out / 'checkpoints/last/encoder'}")
        return 0
    if args.action == "evaluate":
        from policies.decisionnce.exp_pretrain_eval import main
        return main([a for a in args.args if a != "--"])
    if args.action == "lcbc":
        from policies.decisionnce.exp_lcbc import main
        return main([a for a in args.args if a != "--"])
    if args.action == "reward":
        return _reward(args)
    print("choose an action: pretrain, evaluate, reward, lcbc (see --help)")
    return 2


def _reward(args) -> int:
    import numpy as np
    from policies.decisionnce.encoder import DualEncoder
    from policies.decisionnce.rewards import embed_frames, potential, progress, transition_rewards
    from policystack.dataset import read_episodes
    from policystack.errors import DatasetError
    enc = DualEncoder.load(args.encoder)
    eps = read_episodes(args.data, keys=[args.image_key])
    if not 0 <= args.episode < len(eps):
        raise DatasetError(f"{args.data} has {len(eps)} episodes; --episode {args.episode} is out of range")
    ep = eps[args.episode]
    inst = args.instruction or ep.task
    import torch
    with torch.no_grad():
        feats = embed_frames(enc, ep.obs[args.image_key])
        u = enc.encode_text([inst])[0]
        pot, prog = potential(feats, u).numpy(), progress(feats, u).numpy()
        r = transition_rewards(feats, u, args.variant).numpy()
    print(f"instruction: {inst!r}; {len(ep)} frames; return (sum of -{args.variant} rewards) {r.sum():.3f}")
    print("t  potential  progress  reward")
    for t in range(len(ep)):
        print(f"{t:3d} {pot[t]:9.4f} {prog[t]:9.4f} {r[t] if t < len(r) else float('nan'):7.4f}")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(pot, label="potential cos(φ(o_t), ψ(l))")
        ax.plot(prog, label="progress cos(φ(o_t)−φ(o_0), ψ(l))")
        ax.plot(np.cumsum(np.r_[0, r]) / max(1, len(r)), label=f"cumulative -{args.variant} reward / T")
        ax.set_xlabel("t")
        ax.set_title(inst, fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=80)
        print(f"plot written to {args.plot}")
    return 0
