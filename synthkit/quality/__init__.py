"""Judging generated data beyond one answer: near-duplicate detection over texts (dedup), and, with a
reference embedder, per-row similarity scores and flags with a run summary (embedder, score) and
hard-negative mining (mining). Only dedup is on the generation path; numpy and the embedder
libraries load on use."""
