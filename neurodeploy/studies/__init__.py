"""Studies: grids of independent cells run serially, on local processes or on Dask clusters, with a store.

``study`` (``run_study``), ``executors`` (serial, local, tcp://, slurm), ``store`` (one file per finished
cell), ``montecarlo`` (chip instances in memory-bounded chunks), ``learning_grid`` (the learning table),
``compile_grid`` (files × profiles), ``chip_learning`` (learning runs on the chip path), and
``variability`` (``neurodeploy.variability``: many sampled chips, batched or in chunks).
"""
