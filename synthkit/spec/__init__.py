"""A task as data, read from its YAML and never changed by a run: its attributes and their domains (and how
each row draws them), its steps (each a Jinja2 prompt rendered in the one sandbox, the JSON schema of its answer,
its checks), how an answer is parsed (JSON only, nothing evaluated), `file:` values, the language registry,
language ID, scripts and word counts for every script."""
