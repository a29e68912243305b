"""The ``depth-tuner`` command line: one module per subcommand, one table in ``main``."""
