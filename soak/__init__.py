"""The long-service soak of issue 10: `python -m soak` (see __main__.py)."""
