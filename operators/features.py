"""App operators for this stage (placeholder: filled in by the stage's issue)."""

OPERATORS: list[type] = []
