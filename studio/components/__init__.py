"""Reusable studio widgets (third-party components wrapped in one place each)."""
