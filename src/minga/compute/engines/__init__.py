"""Engines beyond one machine: Dask, Ray and Spark run the same job classes as the local engine.

Each engine lives in its own module and imports its client library there, so naming one
never imports the others; ``--engine dask|ray|spark`` finds them through
:func:`minga.compute.get_engine`:

- :class:`~minga.compute.engines.dask_engine.DaskEngine`: a ``distributed`` LocalCluster
  (``workers`` processes, one thread each, on 127.0.0.1) or a scheduler at ``address``;
- :class:`~minga.compute.engines.ray_engine.RayEngine`: a local ``ray.init`` (``workers``
  CPUs) or the cluster at ``address``; an already initialised Ray is used as it is;
- :class:`~minga.compute.engines.spark_engine.SparkEngine`: PySpark ``local[workers]`` or the
  master URL ``address``; an active SparkSession is used as it is.

They only run tasks (``MapTask.run`` / ``ReduceTask.run``); minga's driver plans, commits and
records, so every engine writes the same output. Tasks read and write files: beyond one
host, the input and output directories must be on a filesystem every worker sees.
"""

from __future__ import annotations

__all__: list[str] = []
