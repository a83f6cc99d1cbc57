"""The neuron-sim benchmark suite: placement throughput against a plain reference and moto, simulation
speed against bare simpy, and chip utilization against the MILP optimum (``python -m benchmarks``)."""
