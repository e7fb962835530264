"""The core every layer stands on: the typed config, the row record, the run ledger, errors and secrets."""
