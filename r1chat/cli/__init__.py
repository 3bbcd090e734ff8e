"""Command-line front end. Each subcommand lives in its own module with `register()`."""
