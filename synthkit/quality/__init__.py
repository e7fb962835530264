"""Judging generated data with a reference embedder: the embedder backends (embedder), per-row
similarity scores and flags with a run summary (score), and hard-negative mining (mining).
Nothing here is imported on the generation path; numpy and the embedder libraries load on use."""
