"""The results side: everything after a run has been simulated.

- ``folder``: a run's folder written atomically (summary.json + Parquet tables) and
  read back with checks; the one loader every command below goes through;
- ``summary_table``: what a person sees of a run in the terminal;
- ``compare``: regression comparison of two runs (``dsqlbench compare``);
- ``baseline``: the CI smoke suite against ``results/baselines/``;
- ``export``: CSV, JSON lines and HdrHistogram files for tools outside Arrow;
- ``report``: the self-contained HTML dashboard.

Nothing here feeds back into a simulation.
"""
