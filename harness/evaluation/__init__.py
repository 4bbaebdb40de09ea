"""Evaluation: score cached test faces, aggregate to frames and videos, run the evaluator plugins."""
