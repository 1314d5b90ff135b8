"""Shared helpers for the KOI tests (a uniquely named module: ``from conftest import`` breaks when several
test areas each have a conftest.py). Tiny specs (16x16 images) so the suite runs in seconds on a busy CPU."""

from policystack.spec import Feature, Spec

CAM = "observation.images.corner2"


def tiny_features(size: int = 16) -> Spec:
    return Spec.of([Feature(CAM, (size, size, 3), "uint8"),
                    Feature("observation.state", (39,), "float32"),
                    Feature("task", (), "str"),
                    Feature("action", (4,), "float32", low=-1, high=1)])
