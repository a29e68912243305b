"""The thesis result tables (Tables 5.1-5.4) as CSV, loaded by tuner.analysis.landscape."""
