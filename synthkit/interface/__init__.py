"""What users touch: the command line, the Python API and the subcommands that read a finished run."""
