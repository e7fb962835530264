"""A run, from a composed config to written rows: the plan (cells, the recipe's allocation, brainstormed
definitions), the stages (run.py), the scheduler and its pool of workers, the path of one row (rows.py:
attributes -> prompt -> call -> parse -> check -> write), the ledger every count comes from, and dry runs."""
