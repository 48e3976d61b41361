"""Readers of the trading stack's state. They read values and decide nothing."""
