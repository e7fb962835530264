"""A run, from a composed config to written rows: the plan (cells, the recipe's allocation, brainstormed
definitions), the call stack built before the output dir exists (stack.py), the stages (run.py), the scheduler and
its pool of workers, the path of one row and its steps (rows.py: attributes -> prompt -> call -> parse -> reviews ->
write), the reviews listed in one place (reviews.py), dry runs and previews."""
