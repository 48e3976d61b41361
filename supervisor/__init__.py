"""trading-supervisor: watches a live trading stack and acts toward safety on its own."""

__version__ = "0.1.0"
