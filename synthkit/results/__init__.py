"""What a run leaves behind and what reads it: the output dir (claimed, locked, written a line at a time),
progress on stderr, the dataset card, exports for trainers, sweep merging and coverage, preview, and the
upload to the Hugging Face Hub."""
