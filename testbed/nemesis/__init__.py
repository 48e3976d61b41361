"""A randomized nemesis, Jepsen style: several daemons with `[ha]` over one real Redis and
PostgreSQL, a feed whose instruments go stale and recover, a kill endpoint that logs every
request, and random faults, all drawn from one seed (`schedule.py`); a runner that plays the
schedule against real processes and records what happened (`runner.py`, `history.py`); and a
checker of pure functions over that record (`checker.py`).

`python -m testbed.nemesis --seed 42 --duration 30m` runs it (`__main__.py`).
"""
