"""python-step: a gantry step in Python.

componentize-py builds it into a WASI 0.2 component of the world in
`wit/world.wit`, a `wasi:cli/command` that may also send HTTP requests (see
build.sh); gantry calls `Run.run`, the world's `wasi:cli/run` export. It
reads the numbers in its `values` input and in the body of its `url` input,
sets the outputs `count`, `mean`, `median` and `max`, adds a table to the
step summary and prints a notice. A value that is not a number, or a URL
that does not answer with success, is an `::error::` annotation and a failed
step.
"""

import os
import statistics
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import outgoing_handler
from wit_world.imports.streams import InputStream, StreamError_Closed
from wit_world.imports.wasi_http_types import (
    Fields,
    Method_Get,
    OutgoingBody,
    OutgoingRequest,
    Scheme_Http,
    Scheme_Https,
)

# The most of a `url` body the step reads.
MAX_BODY_BYTES = 1024 * 1024


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
    values = parse("values", os.environ.get("INPUT_VALUES", ""))
    url = os.environ.get("INPUT_URL")
    if url:
        from_url = parse("url", fetch(url))
        print(f"GET {url}: {len(from_url)} values")
        values += from_url
    if not values:
        raise StepError("neither input `values` nor input `url` holds a number")
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


def parse(source: str, text: str) -> list[float]:
    """Numbers separated by commas and/or white space, from input `source`."""
    values = []
    for item in text.replace(",", " ").split():
        try:
            values.append(float(item))
        except ValueError:
            raise StepError(f"input `{source}`: `{item}` is not a number") from None
    return values


def fetch(url: str) -> str:
    """The body of a GET of `url`, sent through `wasi:http`.

    gantry checks the request against the step's `permissions.network`
    before anything leaves the machine: a destination it does not grant
    fails here with `HttpRequestDenied`. urllib and http.client need
    sockets Python does not have here, hence the interface itself.
    """
    parts = urlsplit(url)
    schemes = {"http": Scheme_Http(), "https": Scheme_Https()}
    if parts.scheme not in schemes or not parts.netloc:
        raise StepError(f"input `url`: `{url}` is not an http or https URL")
    request = OutgoingRequest(Fields())
    request.set_method(Method_Get())
    request.set_scheme(schemes[parts.scheme])
    request.set_authority(parts.netloc)
    request.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    # A GET has no body; finishing the empty one tells the host the request
    # is complete.
    body = request.body()
    try:
        future = outgoing_handler.handle(request, None)
    except Err as error:
        raise StepError(f"GET {url} failed: {describe(error.value)}") from None
    OutgoingBody.finish(body, None)
    with future:
        with future.subscribe() as ready:
            ready.block()
        outcome = future.get()
    # `get` gives option<result<result<incoming-response, error-code>>>;
    # after `block` the option is set, and the outer result is an error
    # only when asked twice.
    if outcome is None or isinstance(outcome, Err):
        raise StepError(f"GET {url} failed: no response")
    if isinstance(outcome.value, Err):
        raise StepError(f"GET {url} failed: {describe(outcome.value.value)}")
    with outcome.value.value as response:
        status = response.status()
        with response.consume() as incoming, incoming.stream() as stream:
            data = read_all(stream, url)
    if not 200 <= status < 300:
        raise StepError(f"GET {url} answered {status}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise StepError(f"GET {url}: the body is not UTF-8 text") from None


def read_all(stream: InputStream, url: str) -> bytes:
    """Everything `stream` holds until it closes, at most MAX_BODY_BYTES."""
    data = bytearray()
    while True:
        try:
            data += stream.blocking_read(65536)
        except Err as error:
            if isinstance(error.value, StreamError_Closed):
                return bytes(data)
            raise StepError(f"GET {url}: reading the body failed") from None
        if len(data) > MAX_BODY_BYTES:
            raise StepError(f"GET {url}: the body is larger than {MAX_BODY_BYTES} bytes")


def describe(code: object) -> str:
    """A wasi:http error code's case, e.g. `HttpRequestDenied`."""
    return type(code).__name__.removeprefix("ErrorCode_")


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
