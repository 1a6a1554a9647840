"""Development tooling, run from a source checkout and left out of the production image: the simulated
university and `lde demo`, `lde replay`, alert quality (`lde quality`), the benchmarks (`make bench`)
and the fault harness (`make reliability`, `make soak`)."""
