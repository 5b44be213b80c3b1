"""__NAME__: a gantry step in Python.

componentize-py builds it into a WASI 0.2 component of the `wasi:cli/command`
world (see build.sh); gantry calls `Run.run`, the world's `wasi:cli/run`
export. It greets INPUT_WHO (default "world") and appends the output
`message` to the file GANTRY_OUTPUT names. An error is a `::error::` line on
stdout and a failed step.

Module-level code runs when the component is built, without the step's
environment: read `os.environ` inside `run`. Import every module at the
top: only what was imported while the component was built is in it, and an
import first made inside `run` fails with ModuleNotFoundError.
"""

import os
from typing import NoReturn

from componentize_py_types import Err
from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        if os.environ.get("GANTRY_PHASE", "run") != "run":
            return  # nothing to undo in the rollback phase

        who = os.environ.get("INPUT_WHO") or "world"
        if "\n" in who or "\r" in who:
            fail("input `who` must be one line")
        print(f"Hello, {who}!")

        path = os.environ.get("GANTRY_OUTPUT")
        if not path:
            fail("GANTRY_OUTPUT is not set")
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"message=Hello, {who}!\n")


def fail(message: str) -> NoReturn:
    """Reports `message` as an error annotation and fails the step: `run`
    raising `Err(None)` is exit status 1."""
    print(f"::error title=__NAME__::{message}")
    raise Err(None)
