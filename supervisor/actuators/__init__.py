"""Actuators carry out decisions: idempotent, monotonic toward safety, verified."""
