"""The git remote minga serves: a bare repository in its home whose hook queues a pipeline.

``git push minga main`` writes to the repository (the home is private to its owner: that is
who may push); git's post-receive hook then starts, in the background, one
``minga pipeline trigger`` per pushed branch, and tells the pusher so.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from minga.errors import UsageError
from minga.security import write_private

__all__ = ["create_remote"]

_HOOK = """#!/bin/sh
# minga: queue a pipeline for every branch pushed here
while read old new ref; do
  case "$new" in 0000000000000000000000000000000000000000) continue ;; esac
  case "$ref" in refs/heads/*) ;; *) continue ;; esac
  MINGA_HOME={home} nohup {python} -m minga pipeline trigger --repo "$PWD" --ref "$ref" --commit "$new" \\
    >/dev/null 2>&1 </dev/null &
  echo "minga: pipeline queued for ${{ref#refs/heads/}} at $(echo $new | cut -c1-8); see: minga pipelines"
done
"""


def create_remote(home: Path, name: str = "app") -> Path:
    """The bare repository ``home/git/NAME.git`` with its hook, made on first use."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"remote name {name!r}: use letters, digits, - and _")
    repo = home / "git" / f"{name}.git"
    if not (repo / "HEAD").exists():
        repo.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        done = subprocess.run(
            ["git", "init", "--bare", "--quiet", "--initial-branch=main", str(repo)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise UsageError(f"cannot create {repo}: {done.stderr.strip()}")
    hook = repo / "hooks" / "post-receive"
    write_private(hook, _HOOK.format(home=shlex.quote(str(home)), python=shlex.quote(sys.executable)))
    hook.chmod(0o700)
    return repo
