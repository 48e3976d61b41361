"""Real servers and the simulated trading stack that the tests, the demo and the benchmarks run
against."""
