# Two commands on a fresh Debian 12 machine with Python 3.11:
#   make demo   install (sim extra) and run the main job: demos -> train BC -> evaluate (CPU, offline)
#   make test   install everything (all extras) and run the tests (what CI runs)
.PHONY: demo test setup setup-all bench clean
SHELL := /bin/bash

demo:
	bash scripts/setup.sh sim
	MUJOCO_GL=egl .venv/bin/policystack quickstart --overwrite

test:
	bash scripts/setup.sh all
	bash scripts/run_tests.sh

setup:
	bash scripts/setup.sh sim

setup-all:
	bash scripts/setup.sh all

bench:
	bash scripts/setup.sh all
	MUJOCO_GL=egl .venv/bin/python benchmarks/run_all.py

clean:
	rm -rf outputs runs .pytest_cache
