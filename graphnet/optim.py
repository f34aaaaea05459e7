"""Optimizers and learning-rate schedules that emit update nodes."""
