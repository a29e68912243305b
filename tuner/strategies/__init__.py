"""Which depth to train next: every strategy in one registry, and the rules they follow."""
