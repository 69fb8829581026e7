"""Assembles the ``minga`` command from one module per command group.

Command modules never import this one: they define plain functions (or Typer
sub-apps) and are registered here, so dependencies run one way.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from minga._version import __version__
from minga.errors import MingaError, UsageError

err_console = Console(stderr=True)

# everything after the script belongs to the script, options included
_PASSTHROUGH = {"allow_interspersed_args": False, "ignore_unknown_options": True}

# command name -> (module under minga.cli, function); a module is imported only when
# its command runs (or when the whole command tree is built, for --help), so that
# `minga version` does not pay for the compute engines and `minga up` not for MPI.
COMMANDS: dict[str, tuple[str, str]] = {
    "mpirun": ("mpirun", "mpirun"),
    "schema": ("spec", "schema"),
    "check": ("spec", "check"),
    "up": ("runtime", "up"),
    "down": ("runtime", "down"),
    "status": ("runtime", "status"),
    "logs": ("runtime", "logs"),
    "services": ("runtime", "services"),
    "server": ("runtime", "server"),
    "run": ("run", "run"),
    "call": ("bus", "call"),
    "publish": ("bus", "publish"),
    "demo": ("demo", "demo"),
    "traces": ("monitor", "traces"),
    "top": ("monitor", "top"),
    "audit": ("security", "audit"),
    "token": ("security", "token"),
}

# group name -> (help, {sub-group or command: (module, function) | (help, {...})})
_Tree = dict[str, tuple[str, Any]]  # a leaf (module, function) or a sub-group (help, tree)
GROUPS: dict[str, tuple[str, _Tree]] = {
    "gateway": (
        "The API gateway, and load balancer configs from the registry.",
        {
            "serve": ("gateway", "serve"),
            "render": (
                "Render a load balancer's configuration from the registry.",
                {"haproxy": ("gateway", "haproxy")},
            ),
        },
    ),
    "render": (
        "Render the configuration of an external engine from the spec.",
        {"nats-config": ("security", "render_nats_config")},
    ),
    "secret": (
        "Secrets kept encrypted in minga's home and given to replicas in their environment.",
        {
            "set": ("secret", "secret_set"),
            "list": ("secret", "secret_list"),
            "rm": ("secret", "secret_rm"),
            "rotate": ("secret", "secret_rotate"),
        },
    ),
    "chaos": (
        "Faults and their checker: did a system under faults keep its promises?",
        {"check": ("chaos", "check"), "workload": ("chaos", "workload")},
    ),
    "monitor": (
        "Monitoring beyond one machine: Prometheus and Grafana configs.",
        {
            "render": (
                "Render a monitoring engine's configuration.",
                {
                    "prometheus": ("monitor", "render_prometheus_cmd"),
                    "grafana": ("monitor", "render_grafana_cmd"),
                },
            ),
        },
    ),
}


def _flags_untyped(params: list[Any]) -> list[Any]:
    """Flags take no value: their help shows no ``<bool>`` (typer shows a type for every option)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    """A command whose help lists flags without a value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))


class _Group(TyperGroup):
    """A group whose help lists flags without a value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))


def _function(module: str, name: str) -> Callable[..., Any]:
    function: Callable[..., Any] = getattr(importlib.import_module(f"minga.cli.{module}"), name)
    return function


def _group(help_text: str, tree: _Tree) -> typer.Typer:
    group = typer.Typer(help=help_text, no_args_is_help=True, add_completion=False, cls=_Group)
    for name, (first, second) in tree.items():
        if isinstance(second, dict):
            group.add_typer(_group(first, second), name=name)
        else:
            group.command(name, cls=_Command)(_function(first, second))
    if len(tree) == 1:
        # typer runs a group of one command as that command; a callback keeps it a group
        group.callback()(lambda: None)
    return group


def _load(name: str) -> Any:  # a click Command; which click depends on the typer release
    """Import the module behind one command or group and turn it into a click command."""
    holder = typer.Typer()
    if name in COMMANDS:
        settings = _PASSTHROUGH if name == "mpirun" else None
        holder.command(name, context_settings=settings, cls=_Command)(_function(*COMMANDS[name]))
        holder.callback()(lambda: None)  # keeps the holder a group, so the command is its child
        command = typer.main.get_group(holder).commands[name]
    else:
        help_text, tree = GROUPS[name]
        command = typer.main.get_command(_group(help_text, tree))
        command.name = name
    return command


class _LazyGroup(_Group):
    """The root group: a command's module is imported only when that command runs.

    ``minga version`` then starts without the compute engines, and ``minga up``
    without MPI; ``minga --help`` lists (and so imports) everything.
    """

    # contexts are typed Any: newer typer releases bring their own copy of click
    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS, *GROUPS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS or cmd_name in GROUPS:
            if cmd_name not in self.commands:
                self.add_command(_load(cmd_name), cmd_name)
            return self.commands[cmd_name]
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="minga",
    help="Build, run, observe and ship distributed systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_LazyGroup,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print minga's version and exit."),
    ] = False,
) -> None:
    """Build, run, observe and ship distributed systems."""


@app.command("broker", context_settings=_PASSTHROUGH, add_help_option=False)
def _broker(
    args: Annotated[list[str] | None, typer.Argument(help="Options: minga broker --help.", show_default=False)] = None,
) -> None:
    """Run the embedded NATS-protocol broker until SIGTERM or Ctrl-C; SIGUSR2 enters lame-duck mode."""
    # the console script goes to minga.cli.broker without typer; this entry serves --help listings and tests
    _function("broker", "main")(args or [])


@app.command(cls=_Command)
def version() -> None:
    """Print minga's version."""
    typer.echo(__version__)


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
