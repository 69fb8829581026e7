"""``minga remote``, ``minga pipeline run|trigger|cancel|logs`` and ``minga pipelines``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from minga.cicd import PipelineRunner, RunStore, create_remote
from minga.errors import UsageError
from minga.spec import home_dir

__all__ = ["pipeline_cancel", "pipeline_logs", "pipeline_run", "pipeline_trigger", "pipelines", "remote"]

SpecFile = Annotated[Path, typer.Option("--file", "-f", help="the system spec (its home keeps the runs)")]
DEFAULT_FILE = Path("minga.yaml")


def remote(
    name: Annotated[str, typer.Option("--name", help="the repository's name in minga's home")] = "app",
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Create (once) the git remote minga serves, and print how to push to it."""
    repo = create_remote(home_dir(file), name)
    typer.echo(str(repo))
    typer.echo(f"add it:  git remote add minga {repo}")
    typer.echo("then:    git push minga main   # each push queues a pipeline run (minga pipelines)")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args)} in {repo}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def pipeline_run(
    ref: Annotated[str, typer.Argument(help="a branch, tag or commit of the repository")] = "HEAD",
    repo: Annotated[Path, typer.Option("--repo", help="the git repository")] = Path("."),
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Run the pipeline of REF now, in the foreground, its log shown live."""
    commit = _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    full_ref = ref
    if ref == "HEAD":
        full_ref = (
            subprocess.run(
                ["git", "-C", str(repo), "symbolic-ref", "-q", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            or "HEAD"
        )
    elif _git(repo, "for-each-ref", "--format=%(refname)", f"refs/heads/{ref}"):
        full_ref = f"refs/heads/{ref}"
    runner = PipelineRunner(home_dir(file), on_line=typer.echo)
    record = runner.trigger(repo.resolve(), full_ref, commit)
    typer.echo(f"run {record.id}: {record.branch} at {commit[:8]}")
    record = runner.execute(record.id)
    typer.echo(f"run {record.id}: {record.status}" + (f" ({record.reason})" if record.reason else ""))
    for artifact in record.artifacts:
        typer.echo(f"artifact {artifact.name} sha256:{artifact.sha256} ({artifact.size} bytes)")
    raise typer.Exit(0 if record.status == "succeeded" else 1)


def pipeline_trigger(
    repo: Annotated[Path, typer.Option("--repo", help="the repository pushed to")],
    ref: Annotated[str, typer.Option("--ref", help="the ref pushed (refs/heads/BRANCH)")],
    commit: Annotated[str, typer.Option("--commit", help="the commit pushed")],
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Queue and run a pipeline for a pushed commit (what the remote's hook calls)."""
    runner = PipelineRunner(home_dir(file))
    record = runner.trigger(repo.resolve(), ref, commit)
    record = runner.execute(record.id)
    typer.echo(f"run {record.id}: {record.status}")


def pipeline_cancel(
    run_id: Annotated[str, typer.Argument(help="the run's id (minga pipelines)")],
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Cancel a queued or running pipeline run."""
    record = PipelineRunner(home_dir(file)).cancel(run_id)
    typer.echo(
        f"run {record.id}: cancelling" if record.status == "running" else f"run {record.id}: cancelled"
    )


def pipeline_logs(
    run_id: Annotated[str, typer.Argument(help="the run's id (minga pipelines)")],
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Print the logs of a run's steps, in order."""
    record = RunStore(home_dir(file)).get(run_id)
    for step in record.steps:
        typer.echo(
            f"== {step.stage}/{step.name}: {step.status}"
            + (f" (exit {step.exit_code})" if step.exit_code is not None else "")
        )
        if step.log and Path(step.log).exists():
            typer.echo(Path(step.log).read_text(errors="replace"), nl=False)


def pipelines(file: SpecFile = DEFAULT_FILE) -> None:
    """List the pipeline runs: id, branch, commit, status, duration, the step that failed."""
    records = RunStore(home_dir(file)).all()
    if not records:
        typer.echo("no pipeline run yet: `minga remote` and `git push minga main`, or `minga pipeline run`")
        return
    for r in records:
        took = f"{(r.ended or time.time()) - (r.started or r.created):.1f}s" if r.started else "-"
        typer.echo(f"{r.id}  {r.branch:<16} {r.commit[:8]}  {r.status:<10} {took:>7}  {r.reason}")
