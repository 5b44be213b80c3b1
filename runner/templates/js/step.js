// __NAME__: a gantry step in JavaScript.
//
// componentize-js builds it into a WASI 0.2 component of the
// `wasi:cli/command` world (see build.sh); gantry calls `run.run`, the
// world's `wasi:cli/run` export. It greets INPUT_WHO (default "world") and
// appends the output `message` to the file GANTRY_OUTPUT names. An error
// is a `::error::` line on stdout and a failed step.
//
// There is no `process` or `fs`: the environment and the step files are
// reached through the WASI interfaces imported below. Module-level code
// runs when the component is built, so call them only inside `run`.

import { getEnvironment } from "wasi:cli/environment@0.2.12";
import { getDirectories } from "wasi:filesystem/preopens@0.2.12";

export const run = {
  run() {
    const env = new Map(getEnvironment());
    if ((env.get("GANTRY_PHASE") || "run") !== "run") {
      return; // nothing to undo in the rollback phase
    }

    const who = env.get("INPUT_WHO") || "world";
    if (/[\r\n]/.test(who)) fail("input `who` must be one line");
    console.log(`Hello, ${who}!`);

    const path = env.get("GANTRY_OUTPUT");
    if (!path) fail("GANTRY_OUTPUT is not set");
    appendTo(path, `message=Hello, ${who}!\n`);
  },
};

/** Reports `message` as an error annotation and fails the step: a `run`
 * that throws is exit status 1. */
function fail(message) {
  console.log(`::error title=__NAME__::${message}`);
  throw new Error(message);
}

/** Appends `text` to the file at `path`, opened relative to the preopened
 * folder that holds it (WASI has no open-by-absolute-path). */
function appendTo(path, text) {
  let folder = null;
  for (const [descriptor, guestPath] of getDirectories()) {
    const prefix = guestPath.endsWith("/") ? guestPath : `${guestPath}/`;
    if (path.startsWith(prefix) && (!folder || prefix.length > folder.prefix.length)) {
      folder = { descriptor, prefix };
    }
  }
  if (!folder) fail(`no folder of the step holds ${path}`);
  const file = folder.descriptor.openAt({}, path.slice(folder.prefix.length), {}, { write: true });
  const stream = file.appendViaStream();
  const bytes = new TextEncoder().encode(text);
  // blocking-write-and-flush takes at most 4096 bytes a call.
  for (let start = 0; start < bytes.length; start += 4096) {
    stream.blockingWriteAndFlush(bytes.subarray(start, start + 4096));
  }
  stream[Symbol.dispose](); // the stream before the file it belongs to
  file[Symbol.dispose]();
}
