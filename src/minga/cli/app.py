"""Assembles the ``minga`` command from one module per command group.

Command modules never import this one: they define plain functions (or Typer
sub-apps) and are registered here, so dependencies run one way.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from minga._version import __version__
from minga.cli import broker as broker_cli
from minga.cli import bus as bus_commands
from minga.cli import demo as demo_cli
from minga.cli import gateway as gateway_cmd
from minga.cli import monitor as monitor_cmd
from minga.cli import run as run_cmd
from minga.cli import runtime
from minga.cli import spec as spec_commands
from minga.cli.mpirun import mpirun
from minga.errors import MingaError, UsageError

app = typer.Typer(
    name="minga",
    help="Build, run, observe and ship distributed systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Build, run, observe and ship distributed systems."""


@app.command()
def version() -> None:
    """Print minga's version."""
    typer.echo(__version__)


# everything after the script belongs to the script, options included
app.command(context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})(mpirun)
app.command("schema")(spec_commands.schema)
app.command("check")(spec_commands.check)
app.command("up")(runtime.up)
app.command("down")(runtime.down)
app.command("status")(runtime.status)
app.command("logs")(runtime.logs)
app.command("services")(runtime.services)
app.command("server")(runtime.server)
app.command("run")(run_cmd.run)
app.command("call")(bus_commands.call)
app.command("publish")(bus_commands.publish)
app.command("broker")(broker_cli.broker)
app.command("demo")(demo_cli.demo)

gateway_group = typer.Typer(
    help="The API gateway, and load balancer configs from the registry.", no_args_is_help=True
)
render_group = typer.Typer(
    help="Render a load balancer's configuration from the registry.", no_args_is_help=True
)
gateway_group.command("serve")(gateway_cmd.serve)
render_group.command("haproxy")(gateway_cmd.haproxy)
gateway_group.add_typer(render_group, name="render")
app.add_typer(gateway_group, name="gateway")

app.command("traces")(monitor_cmd.traces)
app.command("top")(monitor_cmd.top)
monitor_group = typer.Typer(help="Monitoring beyond one machine: Prometheus and Grafana configs.", no_args_is_help=True)
monitor_render = typer.Typer(help="Render a monitoring engine's configuration.", no_args_is_help=True)
monitor_render.command("prometheus")(monitor_cmd.render_prometheus_cmd)
monitor_render.command("grafana")(monitor_cmd.render_grafana_cmd)
monitor_group.add_typer(monitor_render, name="render")
app.add_typer(monitor_group, name="monitor")


def main() -> None:
    """Entry point of the ``minga`` console script.

    A :class:`~minga.errors.UsageError` (a user's mistake) is printed as one line and
    exits with status 2; any other :class:`~minga.errors.MingaError` exits with 1.
    """
    try:
        app()
    except UsageError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except MingaError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
