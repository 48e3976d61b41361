"""Publishers: Redis state, Prometheus metrics, systemd notifications, the journal."""
