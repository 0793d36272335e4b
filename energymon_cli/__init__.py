"""The `energymon` command: the floor above every package, gathering each one's subcommands."""
