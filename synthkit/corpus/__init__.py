"""Training data from the user's own documents: read a corpus (JSONL, Parquet, text, Markdown), split it
into chunks, keep an on-disk offset index of the chunks, draw chunks as a task attribute, relabel a row's
positive and hard negative Gecko-style, and write BEIR files. Heavy libraries are imported only when used."""
