"""Does the data make a better embedder? A base model fine-tuned on a finished run's rows (the rows `export` would
give) with sentence-transformers' own trainer, losses and evaluator, and base and tuned compared on evaluation sets
with a paired bootstrap over queries (`synthkit evaluate RUN`, `evaluate=true`).

One job per module: `examples` (the run's rows as training examples), `decontamination` (rows that copy an
evaluation query left out), `sets` (BEIR folders, Hub ids, the run's held-out queries), `finetune` (the trainer, on the datasets
synthkit.results.training_sets makes: one per task type, with its loss and batch policy), `models`
(loading a base model), `retrieval` (per-query nDCG@10, Recall@100, MRR@10 and the corpus-embedding cache),
`statistics` (paired bootstrap, verdicts, spread over seeds), `evaluate` (the whole evaluation of a run), `report`
(its summary line and the sweep's columns) and `card` (its section of the dataset card). torch and
sentence-transformers load only when a model is trained or scored."""
