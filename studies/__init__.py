"""Package data: the thesis' result tables (``thesis/*.csv``) and study presets.

Stored studies (``*.db``) also live in this folder but are git-ignored.
"""
