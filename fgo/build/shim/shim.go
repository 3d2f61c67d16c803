// Command fgo-shim is the -toolexec program that fgo hands to go build.
//
// go build runs it once per tool call as "fgo-shim /path/to/tool args...".
// It must cost almost nothing: a Python interpreter per call would add
// seconds of CPU to a large build, so this is a small Go program that fgo
// builds with the pinned toolchain on first use.
//
// A compile call is forwarded over the fgo coordinator's unix socket
// (FGO_SOCKET); everything else, and any compile the coordinator declines,
// runs right here by exec, exactly as go build would have run it. A link
// asks the coordinator first, which holds it until the verification of the
// compiles it links is done and refuses it on a mismatch. Version
// queries (-V=full) never leave this process, so go build computes the same
// tool IDs, and shares one cache, with or without fgo.
package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// request is what the coordinator receives for one tool call.
type request struct {
	Argv []string          `json:"argv"` // tool path, then its arguments
	Cwd  string            `json:"cwd"`
	Env  map[string]string `json:"env"` // the GO* variables the tool reads
}

// reply is the coordinator's answer: either run locally, or the
// result of the remote run (combined output, as go build captures it).
type reply struct {
	Local  bool   `json:"local"`
	Exit   int    `json:"exit"`
	Output []byte `json:"output"`
}

func main() {
	argv := os.Args[1:]
	if len(argv) == 0 {
		os.Stderr.WriteString("fgo-shim: no tool to run\n")
		os.Exit(2)
	}
	if sock := os.Getenv("FGO_SOCKET"); sock != "" && forwardable(argv) {
		if r, ok := forward(sock, argv); ok && !r.Local {
			os.Stdout.Write(r.Output)
			os.Exit(r.Exit)
		}
	}
	runLocally(argv)
}

// forwardable reports whether a tool call is worth asking the coordinator
// about: a compile (run remotely) or a link (held until verification is done).
func forwardable(argv []string) bool {
	tool := strings.TrimSuffix(filepath.Base(argv[0]), ".exe")
	if tool != "compile" && tool != "link" {
		return false
	}
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "-V") { // -V=full: the tool ID query
			return false
		}
	}
	return true
}

// forward sends one request and waits for its reply. Any trouble with the
// coordinator means "run locally": the build must never be lost to fgo.
func forward(sock string, argv []string) (reply, bool) {
	var r reply
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return r, false
	}
	defer conn.Close()
	cwd, _ := os.Getwd()
	req := request{Argv: argv, Cwd: cwd, Env: map[string]string{}}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, "GO") || k == "TOOLEXEC_IMPORTPATH") {
			req.Env[k] = v
		}
	}
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return r, false
	}
	conn.(*net.UnixConn).CloseWrite()
	if err := json.NewDecoder(conn).Decode(&r); err != nil {
		return r, false
	}
	return r, true
}

func runLocally(argv []string) {
	// go build also runs "gcc -### ..." through -toolexec to compute the C
	// compiler's ID for cgo packages: a bare name must be found on PATH,
	// exactly as exec.Command would, or those packages get other cache keys.
	path, err := exec.LookPath(argv[0])
	if err == nil {
		err = syscall.Exec(path, argv, os.Environ())
	}
	os.Stderr.WriteString("fgo-shim: exec " + argv[0] + ": " + err.Error() + "\n")
	os.Exit(2)
}
