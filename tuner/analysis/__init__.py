"""After training: landscapes, replays of strategies on them, tables and figures."""
