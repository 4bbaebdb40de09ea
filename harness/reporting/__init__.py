"""What a run's numbers become: the results file and its schema (results), the leaderboard and its
protocol (leaderboard, leaderboard_protocol), figures (plots), report.md (report), the notes
under the end-of-run table (notes) and the blenders' preview grid (preview)."""
