"""Training data from the user's own documents: read a corpus (JSONL, Parquet, text, Markdown), split it into
chunks, keep an on-disk offset index of the chunks, and draw chunks as a task attribute. Heavy libraries are
imported only when used."""
