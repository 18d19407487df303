"""Subcommands of the ``pianossm`` CLI, one module per area."""
