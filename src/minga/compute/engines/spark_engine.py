"""The Spark engine: each wave of minga's tasks is one Spark job over an RDD of tasks."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from pyspark import SparkConf
from pyspark.sql import SparkSession

from minga.compute.engines import TaskEngine, TaskSink
from minga.compute.engines._attempts import Task, attempt_failed, committed, run_attempt_caught

__all__ = ["SparkEngine"]


class SparkEngine(TaskEngine):
    """Runs tasks on Spark: ``local[workers]`` in this process's JVM, or the master URL ``address``.

    An active SparkSession is used as it is and left running; otherwise the engine starts one
    (driver bound to 127.0.0.1 when local, no web UI) and stops it on :meth:`close`. Executors
    run the same Python interpreter as minga. Each wave of tasks is one Spark job with one
    partition per task; attempts that raise are collected and sent again in a further job.
    """

    name = "spark"

    def __init__(self, workers: int | None = None, address: str | None = None, *, max_attempts: int = 4) -> None:
        self.max_attempts = max_attempts
        # executors must run the interpreter that has minga and the job's imports
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        active = SparkSession.getActiveSession()
        self._owns = active is None
        if active is None:
            # local[N,F]: N cores, and a task whose Python worker dies is retried F times
            master = address or f"local[{workers or 2},{max_attempts}]"
            conf = (
                SparkConf()
                .setAppName("minga")
                .setMaster(master)
                .set("spark.ui.enabled", "false")
                .set("spark.ui.showConsoleProgress", "false")
            )
            if address is None:
                conf = conf.set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
            active = SparkSession.builder.config(conf=conf).getOrCreate()
        self.session = active
        self.workers = workers or max(1, int(active.sparkContext.defaultParallelism))

    def run_tasks(self, tasks: Sequence[Task], sink: TaskSink) -> None:
        wave = [(task, 1) for task in tasks]
        context = self.session.sparkContext
        while wave:
            for task, attempt in wave:
                sink.started(task, attempt)
            rdd = context.parallelize(wave, len(wave))
            outcomes = rdd.map(lambda item: run_attempt_caught(*item)).collect()
            retry = []
            for (task, attempt), (ok, value) in zip(wave, outcomes, strict=True):
                if ok:
                    committed(sink, value)
                else:
                    attempt_failed(sink, task, attempt, value, self.max_attempts)
                    retry.append((task, attempt + 1))
            wave = retry

    def close(self) -> None:
        if self._owns:
            self.session.stop()
