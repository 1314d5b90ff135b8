"""CLI verbs, one module each (see policystack/cli.py)."""
