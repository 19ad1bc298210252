"""The coming evals work: flows that score replayed outputs (empty for now)."""
