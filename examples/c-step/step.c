/*
 * A gantry step in plain C: reads its inputs from INPUT_* variables,
 * appends an output to the file GANTRY_OUTPUT names, a line to the step
 * summary, prints a notice, and fails with an ::error:: annotation and exit
 * status 1 when an input is wrong. Build with build.sh (or
 * examples/build-foreign.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An input's value, or `fallback` when it is missing or empty. */
static const char *input(const char *variable, const char *fallback) {
    const char *value = getenv(variable);
    return (value && *value) ? value : fallback;
}

/* Appends `name=value` to the file that `variable` names. Values here are
 * single-line; a multi-line value needs the heredoc form (see sdk/ABI.md). */
static int append_entry(const char *variable, const char *name, const char *value) {
    const char *path = getenv(variable);
    if (!path) {
        printf("::error::%s is not set\n", variable);
        return -1;
    }
    FILE *file = fopen(path, "a");
    if (!file) {
        printf("::error::cannot open %s\n", path);
        return -1;
    }
    fprintf(file, "%s=%s\n", name, value);
    return fclose(file);
}

int main(void) {
    const char *phase = input("GANTRY_PHASE", "run");
    if (strcmp(phase, "run") != 0) {
        printf("nothing to do in phase %s\n", phase);
        return 0;
    }

    const char *who = input("INPUT_WHO", "world");
    const char *times_text = input("INPUT_TIMES", "1");
    char *end = NULL;
    long times = strtol(times_text, &end, 10);
    if (*end != '\0' || times < 1 || times > 10) {
        /* `,` and `:` in a property would be escaped as %2C and %3A. */
        printf("::error title=c-step::input `times` must be 1 to 10, found `%s`\n", times_text);
        return 1;
    }
    if (strchr(who, '\n')) {
        printf("::error title=c-step::input `who` must be one line\n");
        return 1;
    }

    printf("::group::Greeting %ld time(s)\n", times);
    for (long i = 0; i < times; i++) {
        printf("Hello from C, %s!\n", who);
    }
    printf("::endgroup::\n");
    printf("::notice title=c-step::greeted %s\n", who);

    char message[512];
    snprintf(message, sizeof message, "Hello from C, %s!", who);
    if (append_entry("GANTRY_OUTPUT", "message", message) != 0) return 1;

    const char *summary = getenv("GANTRY_STEP_SUMMARY");
    FILE *file = summary ? fopen(summary, "a") : NULL;
    if (file) {
        fprintf(file, "- C step greeted **%s** %ld time(s)\n", who, times);
        fclose(file);
    }
    return 0;
}
