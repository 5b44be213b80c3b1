"""python-step: a gantry step in Python.

componentize-py builds it into a WASI 0.2 component of the `wasi:cli/command`
world (see build.sh); gantry calls `Run.run`, the world's `wasi:cli/run`
export. It reads the numbers in its `values` input, sets the outputs `count`,
`mean`, `median` and `max`, adds a table to the step summary and prints a
notice. A value that is not a number is an `::error::` annotation and a
failed step.
"""

import os
import statistics

from componentize_py_types import Err
from wit_world import exports


class StepError(Exception):
    """A problem with the step's input, reported as an ::error:: annotation."""


class Run(exports.Run):
    def run(self) -> None:
        # The same component runs as the step's rollback hook, if one is
        # declared; this step changes nothing outside itself, so there is
        # nothing to undo.
        phase = os.environ.get("GANTRY_PHASE", "run")
        if phase != "run":
            print(f"nothing to undo in phase {phase}")
            return
        try:
            summarize()
        except StepError as error:
            print(f"::error title=python-step::{escape(str(error))}")
            # `run` returning its error case is exit status 1.
            raise Err(None)


def summarize() -> None:
    label = os.environ.get("INPUT_LABEL") or "values"
    text = os.environ.get("INPUT_VALUES", "")
    values = parse(text)
    if not values:
        raise StepError("input `values` holds no number")
    if "\n" in label or "\r" in label:
        raise StepError("input `label` must be one line")

    results = {
        "count": str(len(values)),
        "mean": number(statistics.fmean(values)),
        "median": number(statistics.median(values)),
        "max": number(max(values)),
    }
    print(f"{label}: " + ", ".join(f"{name} {value}" for name, value in results.items()))
    print(f"::notice title=python-step::{escape(label)}: mean {results['mean']} of {results['count']} values")

    append("GANTRY_OUTPUT", "".join(f"{name}={value}\n" for name, value in results.items()))
    rows = "".join(f"| {name} | {value} |\n" for name, value in results.items())
    append("GANTRY_STEP_SUMMARY", f"### {label}\n\n| statistic | value |\n| --- | --- |\n{rows}\n")


def parse(text: str) -> list[float]:
    """Numbers separated by commas and/or spaces."""
    values = []
    for item in text.replace(",", " ").split():
        try:
            values.append(float(item))
        except ValueError:
            raise StepError(f"input `values`: `{item}` is not a number") from None
    return values


def number(value: float) -> str:
    """A number as a person writes it: `101`, not `101.0`; at most 4 decimals."""
    return f"{round(value, 4):g}"


def append(variable: str, text: str) -> None:
    """Appends to the step file that the environment variable names."""
    path = os.environ.get(variable)
    if not path:
        raise StepError(f"{variable} is not set")
    with open(path, "a", encoding="utf-8") as file:
        file.write(text)


def escape(message: str) -> str:
    """Escapes a workflow command's message: `%` first, then line breaks."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
