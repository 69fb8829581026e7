"""Delivery from git: a remote that queues pipelines on push, the pipeline runner, its runs.

- :func:`create_remote`: the bare repository in minga's home that ``git push`` writes to; its
  hook queues a run per pushed branch.
- :class:`PipelineRunner`: runs ``.minga/pipeline.yaml`` for a commit, one run per branch at a
  time, in a clean checkout; steps as processes with timeouts, secrets, a cache, logs and
  artifacts kept by digest. :class:`RunStore` keeps the runs' records.
"""

from minga.cicd._pipeline import PIPELINE_FILE, Pipeline, Stage, Step, load_pipeline
from minga.cicd._remote import create_remote
from minga.cicd._runner import PipelineRunner
from minga.cicd._runs import ArtifactRecord, RunRecord, RunStore, StepRecord

__all__ = [
    "PIPELINE_FILE",
    "ArtifactRecord",
    "Pipeline",
    "PipelineRunner",
    "RunRecord",
    "RunStore",
    "Stage",
    "Step",
    "StepRecord",
    "create_remote",
    "load_pipeline",
]
