"""placeholder"""
def validate() -> None:
    """Train."""
