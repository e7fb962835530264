"""A finished run and what reads it: its dir (rundir.py: every file name, the lock, the writers and readers), the
dataset card, exports for trainers (and BEIR), scoring, sweep merging and coverage, and the upload to the Hub."""
