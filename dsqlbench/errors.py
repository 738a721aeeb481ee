"""The error vocabulary of the lab.

Two kinds of failure never mix:

- ``UserError`` and its subclasses: bad input from the person or CI driving the lab
  (a config file, a ``--set`` value, a result folder). The CLI turns each into one line
  on stderr and the exit code of its class, with no traceback unless ``--debug``.
- Everything else is a bug: it crashes loudly, and the CLI prints the seed that
  reproduces it.

Expected failures inside a simulated run (conflicts, timeouts, injected faults) are not
exceptions at all: they are values (``dsqlbench.components.messages.AbortReason``) that
metrics count.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input. ``str(error)`` is the one line shown to the user."""

    exit_code = 2


class ConfigError(UserError):
    """A workload, topology or sweep file, or a ``--set`` override, is not valid.

    The message names the file, the dotted key and what is allowed, e.g.
    ``workloads/x.toml: clients.count = 0: must be an integer >= 1``.
    """

    exit_code = 2

    def __init__(self, source: str, key: str | None, problem: str):
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


class ResultError(UserError):
    """A result folder or baseline cannot be read as what it claims to be."""

    exit_code = 3
