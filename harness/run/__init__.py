"""The run: its configuration (config, config_check, userdata), its folder (folder, lock, paths),
and `harness run`'s stages wired by stages.py: datasets, preprocess_stage, train_stage,
evaluate_stage, build (the results dict), summary (the terminal table), demo_run (demo sizing)
and publish (the shipped leaderboard)."""
