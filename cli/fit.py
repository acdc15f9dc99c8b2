"""placeholder"""
def fit() -> None:
    """Train."""
