"""Development tools, run from a source checkout and left out of the production image: the benchmarks
(`make bench`), the fault harness (`make reliability`, `make soak`) and alert quality (`lde quality`)."""
