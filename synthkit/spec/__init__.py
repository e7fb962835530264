"""A task as data, read from its YAML and never changed by a run: its attributes and their domains (and how
each row draws them), the Jinja2 prompt rendered in a sandbox, the JSON schema of the answer, how an answer is
parsed (JSON only, nothing evaluated), the quality checks of its meaning, `file:` values, language ID and
word counts for every script."""
