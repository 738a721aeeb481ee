"""dsqlbench: a benchmark and performance lab for databases built like Aurora DSQL.

The package has two layers kept apart (see DESIGN.md):

- component cores (``dsqlbench.components``): plain classes with no notion of time or
  transport; messages in, messages and decisions out;
- the runtime (``dsqlbench.sim``): a deterministic SimPy simulation that owns virtual
  time (integer nanoseconds), the network, node clocks and faults.
"""

__version__ = "0.1.0"
