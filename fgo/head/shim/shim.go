// Command fgo-shim is the -toolexec program that fgo hands to go build.
//
// go build runs it once per tool call as "fgo-shim /path/to/tool args...".
// It must cost almost nothing: a Python interpreter per call would add
// seconds of CPU to a large build, so this is a small Go program that fgo
// builds with the pinned toolchain on first use.
//
// A compile call is forwarded over the fgo head's unix socket (FGO_SOCKET);
// everything else, and any compile the head answers with "local", runs right
// here by exec, exactly as go build would have run it. When the head says
// "hold" (a compile on one of the head's local slots), the connection stays
// open across the exec: the compiler inherits it, and the head sees the slot
// free when the compiler exits. A link asks the head first, which holds it
// until the verification of the compiles it links is done and refuses it on a
// mismatch. Version queries (-V=full) never leave this process, so go build
// computes the same tool IDs, and shares one cache, with or without fgo.
package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// request is what the coordinator receives for one tool call.
type request struct {
	Argv []string          `json:"argv"` // tool path, then its arguments
	Cwd  string            `json:"cwd"`
	Env  map[string]string `json:"env"` // the GO* variables the tool reads
}

// reply is the head's answer: either run locally (holding the connection
// while the tool runs), or the result of a run elsewhere (combined output,
// as go build captures it).
type reply struct {
	Local  bool   `json:"local"`
	Hold   bool   `json:"hold"`
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
		r, conn, ok := forward(sock, argv)
		if ok && !r.Local {
			os.Stdout.Write(r.Output)
			os.Exit(r.Exit)
		}
		if ok && r.Hold {
			held := inherit(conn)
			runLocally(argv)
			runtime.KeepAlive(held)
		}
	}
	runLocally(argv)
}

// inherit makes a copy of the connection that survives exec, so that the tool
// run in this process's place holds it until it exits. A failure only means
// the head learns of the end a little early.
func inherit(conn net.Conn) *os.File {
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil
	}
	syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_SETFD, 0)
	return f
}

// forwardable reports whether a tool call is worth asking the coordinator
// about: a compile (run elsewhere, or on a local slot) or a link (held until
// verification is done).
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

// forward sends one request (one line of JSON) and waits for its reply. Any
// trouble with the head means "run locally": the build must never be lost to
// fgo.
func forward(sock string, argv []string) (reply, net.Conn, bool) {
	var r reply
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return r, nil, false
	}
	cwd, _ := os.Getwd()
	req := request{Argv: argv, Cwd: cwd, Env: map[string]string{}}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, "GO") || k == "TOOLEXEC_IMPORTPATH") {
			req.Env[k] = v
		}
	}
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return r, nil, false
	}
	if err := json.NewDecoder(conn).Decode(&r); err != nil {
		return r, nil, false
	}
	return r, conn, true
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
