"""Runnable examples: `python -m graphnet.examples.NAME`."""
