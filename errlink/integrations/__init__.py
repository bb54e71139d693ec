"""Framework integrations. Each module imports its framework only when it is used."""
