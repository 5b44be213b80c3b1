// A gantry step in Go, built with GOOS=wasip1 GOARCH=wasm into a WASI
// preview 1 command module. It counts the lines and words of a file in the
// workspace and takes its sha256, sets them as outputs, adds a row to the
// step summary and prints a notice. A missing or unreadable file is an
// ::error:: annotation and exit status 1. Build with build.sh.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strings"
)

func main() {
	if phase := os.Getenv("GANTRY_PHASE"); phase != "" && phase != "run" {
		fmt.Printf("nothing to undo in phase %s\n", phase)
		return
	}
	if err := run(); err != nil {
		fmt.Printf("::error title=go-step::%s\n", escapeData(err.Error()))
		os.Exit(1)
	}
}

func run() error {
	name := os.Getenv("INPUT_FILE")
	if name == "" {
		return fmt.Errorf("input `file` is required")
	}
	// WASI has no current folder: a relative path is the user's path in
	// the workspace. Refusing `..` and absolute paths keeps the step's
	// promise ("a file of the workspace") whatever the sandbox would allow.
	clean := path.Clean(name)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("input `file` must be a path inside the workspace, found `%s`", name)
	}
	workspace := os.Getenv("GANTRY_WORKSPACE")
	if workspace == "" {
		return fmt.Errorf("no workspace: the step needs `permissions.workspace: read`")
	}
	content, err := os.ReadFile(path.Join(workspace, clean))
	if err != nil {
		return fmt.Errorf("cannot read `%s`: %v", clean, err)
	}

	lines := bytes.Count(content, []byte("\n"))
	if len(content) > 0 && content[len(content)-1] != '\n' {
		lines++ // a last line without its line break still counts
	}
	words := len(bytes.Fields(content))
	digest := sha256.Sum256(content)
	sum := hex.EncodeToString(digest[:])

	fmt.Printf("%s: %d lines, %d words\n", clean, lines, words)
	fmt.Printf("::notice title=go-step::counted %s\n", escapeData(clean))

	if err := appendEntries("GANTRY_OUTPUT", [][2]string{
		{"lines", fmt.Sprint(lines)},
		{"words", fmt.Sprint(words)},
		{"sha256", sum},
	}); err != nil {
		return err
	}
	if summary := os.Getenv("GANTRY_STEP_SUMMARY"); summary != "" {
		row := fmt.Sprintf("- Go step: `%s` has %d lines and %d words\n", clean, lines, words)
		if err := appendFile(summary, row); err != nil {
			return err
		}
	}
	return nil
}

// appendEntries appends `name=value` lines to the file the environment
// variable `variable` names. The values here are single-line numbers and
// hex; a multi-line value would need the heredoc form (see sdk/ABI.md).
func appendEntries(variable string, entries [][2]string) error {
	file := os.Getenv(variable)
	if file == "" {
		return fmt.Errorf("%s is not set", variable)
	}
	var text strings.Builder
	for _, entry := range entries {
		fmt.Fprintf(&text, "%s=%s\n", entry[0], entry[1])
	}
	return appendFile(file, text.String())
}

func appendFile(file, text string) error {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cannot open %s: %v", file, err)
	}
	writer := bufio.NewWriter(f)
	if _, err := writer.WriteString(text); err != nil {
		f.Close()
		return err
	}
	if err := writer.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// escapeData escapes a workflow command's message: `%` first, then the
// line breaks that would end the command early.
func escapeData(text string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(text)
}
