"""The run: its configuration's files and run-level checks (userdata, config_check; the types and
value checks are harness.vocab), its folder's lock and paths (lock, paths),
and `harness run`'s stages wired by stages.py: datasets, preprocess_stage, train_stage,
evaluate_stage, build (the results dict of a run or an evaluation), outputs (the one writer of a run
folder), summary (the terminal table), demo_run (demo sizing) and publish (the shipped leaderboard);
`harness evaluate`'s pipeline (evaluate, several) writes through the same builder and writer."""
