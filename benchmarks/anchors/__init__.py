"""The same fault handled side by side by this daemon and by the tools it is measured
against: Prometheus + Alertmanager (tuned, and with their defaults) and monit. See
compare.py; docs/benchmarks.md explains the figures."""
