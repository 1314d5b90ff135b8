"""`policystack quickstart`: the main job on the embedded default (no hardware, no downloads)."""

NAME = "quickstart"
HELP = "the main job end to end: expert demos -> train BC -> evaluate -> success rate, video, plot"
DESCRIPTION = """Generate scripted-expert demos for a Meta-World task, train the BC baseline, evaluate it on
held-out init states, and print the success rate with the paths of a rollout video and the
training-curve plot. Defaults run on a CPU in a few minutes:
  policystack quickstart                                  # reach-v3, state-based BC
  policystack quickstart --task drawer-open-v3 --pixels   # camera corner2 at 84x84 + state
"""


def add_arguments(p) -> None:
    p.add_argument("--task", default="reach-v3", help="Meta-World task")
    p.add_argument("--demos", type=int, default=50, help="expert demonstrations")
    p.add_argument("--steps", type=int, default=3000, help="training steps")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    p.add_argument("--pixels", action="store_true", help="train on camera images (corner2, 84x84) + state")
    p.add_argument("--out", default="outputs/quickstart", help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")


def run(args) -> int:
    import shutil
    import time
    from pathlib import Path

    import torch

    from policystack import config as cfgmod
    from policystack.demos import generate_metaworld_demos
    from policystack.evaluation import evaluate
    from policystack.training import TrainConfig, train
    out = Path(args.out) / (args.task + ("-pixels" if args.pixels else ""))
    if out.exists():
        if not args.overwrite:
            print(f"{out} exists; reusing nothing: pass --overwrite to replace it or --out elsewhere")
            return 2
        shutil.rmtree(out)
    torch.set_num_threads(1)
    cams = ("corner2",) if args.pixels else ()
    t0 = time.time()
    data = generate_metaworld_demos(args.task, args.demos, out / "demos.hdf5", cameras=cams, image_size=84)
    t1 = time.time()
    overrides = [f"dataset={data}", f"output_dir={out / 'train'}", f"steps={args.steps}",
                 "policy.modalities=" + ("state,images" if args.pixels else "state")]
    run_dir = train(cfgmod.apply_overrides(TrainConfig(), overrides))
    t2 = time.time()
    env_kw = {"cameras": cams, "image_size": 84} if cams else {}
    report = evaluate(run_dir / "checkpoints" / "last" / "pretrained", args.task, args.episodes, env_kwargs=env_kw,
                      video_dir=out / "eval" / "videos", max_videos=2, out_dir=out / "eval")
    t3 = time.time()
    print()
    print(f"task: {args.task} ({'pixels + state' if args.pixels else 'state'}), {args.demos} expert demos, "
          f"{args.steps} training steps")
    print(f"success rate: {report['success_rate']:.2f} over {report['n_episodes']} held-out episodes "
          f"(mean length {report['avg_length']:.0f} steps)")
    print(f"time: demos {t1 - t0:.0f} s, training {t2 - t1:.0f} s, evaluation {t3 - t2:.0f} s")
    for v in report["videos"][:1]:
        print(f"rollout video: {v}")
    print(f"training curve: {run_dir / 'loss.png'}")
    print(f"report: {out / 'eval' / 'eval_info.json'}")
    print(f"checkpoint: {run_dir / 'checkpoints' / 'last' / 'pretrained'}")
    return 0
