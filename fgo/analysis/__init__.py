"""Analysis for the experiments and `fgo plan`: action graphs, graph algorithms, simulation."""
