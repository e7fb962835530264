"""Judging rows beyond one answer's checks: near-duplicate detection (dedup), the LLM judge (llm_judge), Gecko
relabelling (relabel), and with a reference embedder, per-row similarity scores and flags (embedder, score) and
hard-negative mining (mining). Only dedup is on every run's path; numpy and the embedder libraries load on use."""
