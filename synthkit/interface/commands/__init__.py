"""The subcommands that read a finished run: argument parsing only; the work is in synthkit.results."""
