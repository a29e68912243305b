"""The stored study: the only record of a search, and what is kept with it."""
