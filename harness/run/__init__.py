"""The run: its configuration, its folder, and the stages `harness run` wires together."""
