"""Read training logs, judge each run, prescribe regularization changes.

Nothing in this package imports torch or lightning.
"""
