"""depth-tuner: how many top backbone layers to unfreeze, measured and searched.

Flow: data -> hypermodel -> trial metrics -> objective -> study -> report.
"""

__version__ = "0.1.0"
