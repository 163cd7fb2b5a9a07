"""The ``tagrelay`` command: one module per subcommand, each with a ``register(subparsers)`` function."""
