// js-step: a gantry step in JavaScript that checks a URL answers.
//
// componentize-js builds it into a WASI 0.2 component of the
// `wasi:cli/command` world (see build.sh): the JavaScript engine
// (StarlingMonkey) and this module, pre-initialized. gantry calls
// `run.run`, the world's `wasi:cli/run` export. `fetch` goes out through
// `wasi:http`, so the step reaches only what its `permissions.network`
// grants.
//
// There is no `process` or `fs` here: the environment and the step files
// are reached through the WASI interfaces imported below. Module-level
// code runs when the component is built, so nothing below calls them
// outside `run`.

import { getEnvironment } from "wasi:cli/environment@0.2.12";
import { getDirectories } from "wasi:filesystem/preopens@0.2.12";

/** A problem reported as an ::error:: annotation, failing the step. */
class StepError extends Error {}

export const run = {
  async run() {
    const env = new Map(getEnvironment());
    const phase = env.get("GANTRY_PHASE") || "run";
    if (phase !== "run") {
      console.log(`nothing to undo in phase ${phase}`);
      return;
    }
    try {
      await check(env);
    } catch (error) {
      const message = error instanceof StepError ? error.message : `${error.name}: ${error.message}`;
      console.log(`::error title=js-step::${escape(message)}`);
      // A rejected `run` is its error case: exit status 1.
      throw error;
    }
  },
};

async function check(env) {
  const url = env.get("INPUT_URL");
  if (!url) throw new StepError("input `url` is required");
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    // A refused destination, a failed connection or a bad URL.
    throw new StepError(`GET ${url} failed: ${error.message}`);
  }
  const body = new Uint8Array(await response.arrayBuffer());
  console.log(`GET ${url}: ${response.status} ${response.statusText}, ${body.length} bytes`);
  appendTo(env, "GANTRY_OUTPUT", `status=${response.status}\nbytes=${body.length}\n`);
  appendTo(env, "GANTRY_STEP_SUMMARY", `- JavaScript step: \`GET ${url}\` answered ${response.status}\n`);
  if (!response.ok) throw new StepError(`GET ${url} answered ${response.status}`);
  console.log(`::notice title=js-step::${escape(url)} answered ${response.status}`);
}

/**
 * Appends `text` to the step file the environment variable `variable`
 * names. WASI has no open-by-absolute-path: the file is opened relative to
 * the preopened folder (e.g. `/gantry`) that holds it.
 */
function appendTo(env, variable, text) {
  const path = env.get(variable);
  if (!path) throw new StepError(`${variable} is not set`);
  let folder = null;
  for (const [descriptor, guestPath] of getDirectories()) {
    const prefix = guestPath.endsWith("/") ? guestPath : `${guestPath}/`;
    if (path.startsWith(prefix) && (!folder || prefix.length > folder.prefix.length)) {
      folder = { descriptor, prefix };
    }
  }
  if (!folder) throw new StepError(`no folder of the step holds ${path}`);
  const file = folder.descriptor.openAt({}, path.slice(folder.prefix.length), {}, { write: true });
  const stream = file.appendViaStream();
  const bytes = new TextEncoder().encode(text);
  // blocking-write-and-flush takes at most 4096 bytes a call.
  for (let start = 0; start < bytes.length; start += 4096) {
    stream.blockingWriteAndFlush(bytes.subarray(start, start + 4096));
  }
  // The stream is a child of the file: drop it first.
  stream[Symbol.dispose]();
  file[Symbol.dispose]();
}

/** Escapes a workflow command's message: `%` first, then line breaks. */
function escape(message) {
  return message.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}
