"""High availability: one leader among the instances that share a namespace, by a lease in
Redis with a fencing token (docs/operations.md, "High availability").

- leadership.py: what this instance believes about the lease, and whether it may act (no I/O);
- lease.py: the lease in Redis (acquire, renew, release: one Lua script each);
- instances.py: every live instance's record, for `status`.
"""
