/*
 * __NAME__: a gantry step in C. It greets INPUT_WHO (default "world") and
 * appends the output `message` to the file GANTRY_OUTPUT names. An error is
 * a `::error::` line on stdout and a non-zero exit status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An input's value, or `fallback` when it is missing or empty. */
static const char *input(const char *variable, const char *fallback) {
    const char *value = getenv(variable);
    return (value && *value) ? value : fallback;
}

int main(void) {
    if (strcmp(input("GANTRY_PHASE", "run"), "run") != 0)
        return 0; /* nothing to undo in the rollback phase */

    const char *who = input("INPUT_WHO", "world");
    if (strchr(who, '\n') || strchr(who, '\r')) {
        printf("::error title=__NAME__::input `who` must be one line\n");
        return 1;
    }
    printf("Hello, %s!\n", who);

    const char *path = getenv("GANTRY_OUTPUT");
    FILE *out = path ? fopen(path, "a") : NULL;
    if (!out) {
        printf("::error title=__NAME__::cannot open GANTRY_OUTPUT\n");
        return 1;
    }
    fprintf(out, "message=Hello, %s!\n", who);
    return fclose(out) == 0 ? 0 : 1;
}
