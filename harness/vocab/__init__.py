"""The shared vocabulary every layer above reads: a run's configuration (config, config_check,
recipes), its folder (folder) and the robustness conditions' names (conditions). It imports only
harness.common, harness.extend and harness.data."""
