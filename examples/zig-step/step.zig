//! A gantry step in Zig: sums the numbers in its `numbers` input (a
//! comma-separated list), sets the `sum` output, writes a summary line and
//! fails with an ::error:: annotation when an item is not a number.
//!
//! It talks to the C library (wasi-libc, bundled with Zig) for the
//! environment, files and stdout: those few calls have stayed the same
//! across Zig releases, while Zig's own I/O interfaces have not.

const std = @import("std");

extern "c" fn getenv(name: [*:0]const u8) ?[*:0]const u8;
extern "c" fn printf(format: [*:0]const u8, ...) c_int;
extern "c" fn fopen(path: [*:0]const u8, mode: [*:0]const u8) ?*anyopaque;
extern "c" fn fprintf(file: *anyopaque, format: [*:0]const u8, ...) c_int;
extern "c" fn fclose(file: *anyopaque) c_int;

/// An input's value, or `fallback` when it is missing or empty.
fn input(name: [*:0]const u8, fallback: []const u8) []const u8 {
    const value = getenv(name) orelse return fallback;
    const text = std.mem.span(value);
    return if (text.len == 0) fallback else text;
}

/// Appends a formatted line to the file that `variable` names.
fn appendTo(variable: [*:0]const u8, comptime format: [*:0]const u8, args: anytype) bool {
    const path = getenv(variable) orelse return false;
    const file = fopen(path, "a") orelse return false;
    _ = @call(.auto, fprintf, .{ file, format } ++ args);
    return fclose(file) == 0;
}

pub fn main() u8 {
    const phase = input("GANTRY_PHASE", "run");
    if (!std.mem.eql(u8, phase, "run")) return 0;

    const numbers = input("INPUT_NUMBERS", "");
    var sum: i64 = 0;
    var count: usize = 0;
    var items = std.mem.splitScalar(u8, numbers, ',');
    while (items.next()) |raw| {
        const item = std.mem.trim(u8, raw, " \t\r\n");
        if (item.len == 0) continue;
        const value = std.fmt.parseInt(i64, item, 10) catch {
            _ = printf("::error title=zig-step::`%.*s` is not an integer\n", @as(c_int, @intCast(item.len)), item.ptr);
            return 1;
        };
        sum += value;
        count += 1;
    }
    if (count == 0) {
        _ = printf("::error title=zig-step::input `numbers` is required (e.g. `1, 2, 3`)\n");
        return 1;
    }

    _ = printf("::notice title=zig-step::%zu numbers add up to %lld\n", count, @as(c_longlong, sum));
    if (!appendTo("GANTRY_OUTPUT", "sum=%lld\n", .{@as(c_longlong, sum)})) {
        _ = printf("::error::cannot write GANTRY_OUTPUT\n");
        return 1;
    }
    _ = appendTo("GANTRY_STEP_SUMMARY", "- Zig step: %zu numbers, sum **%lld**\n", .{ count, @as(c_longlong, sum) });
    return 0;
}
