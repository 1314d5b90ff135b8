import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # 2-core CI: more threads only contend


@pytest.fixture(scope="session")
def reach_demos(tmp_path_factory):
    """50 state-only expert demos of reach-v3 (about 3 s)."""
    from policystack.demos import generate_metaworld_demos
    path = tmp_path_factory.mktemp("demos") / "reach.hdf5"
    return generate_metaworld_demos("reach-v3", 50, path, progress=False)


@pytest.fixture(scope="session")
def reach_policy_dir(reach_demos, tmp_path_factory):
    """A state-based BC checkpoint trained on the reach demos (about 15 s on one core)."""
    from policystack import config as C
    from policystack.training import TrainConfig, train
    out = tmp_path_factory.mktemp("runs") / "reach"
    cfg = C.apply_overrides(TrainConfig(), [f"dataset={reach_demos}", f"output_dir={out}", "steps=2000",
                                            "policy.modalities=state", "save_every=1000", "log_every=200"])
    return train(cfg) / "checkpoints" / "last" / "pretrained"
