// Command httpserver is the oracle of gotrace's field paths (args --field, funclat --by, args
// --where) on a real net/http server: it serves on 127.0.0.1 (a free port) and is its own
// client, sending -rounds rounds of a fixed list of requests (method, path, Host header) one
// at a time, or from -concurrency clients at once. Its handler, main.handle(w
// http.ResponseWriter, r *http.Request), prints one line per request it served, in the order
// it served them:
//
//	served "GET" "/foo/bar" "a.example"
//
// (method, URL path and Host, Go-quoted), then main.(*server).record(r, tags) counts it.
// Paths under /slow/ sleep -sleep (25ms) in the handler before answering. At exit it prints
// "requests N" (requests served).
//
// With -hot N it serves nothing: it calls main.hot(r, i) N times in a tight loop on one
// request (GET http://a.example/foo/bar) and prints "HOT_NS_PER_CALL x" (its own time per
// call), for bench/fields.sh.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// A request of the client's list.
type request struct {
	method, path, host string
}

var requests = []request{
	{"GET", "/foo/bar?q=1", "a.example"},
	{"POST", "/api/items", "b.example"},
	{"GET", "/slow/report", "a.example"},
	{"PUT", "/api/items/7", "c.example:8080"},
	{"DELETE", "/api/items/7", "b.example"},
	{"GET", "/", "a.example"},
	{"PATCH", "/foo/bar", "a.example"},
}

// Embedded in server: s.Hits is promoted.
type stats struct {
	Hits   int
	Errors int
}

type config struct {
	Timeout time.Duration
	Name    string
}

type server struct {
	stats
	cfg   *config
	mu    sync.Mutex
	sleep time.Duration
	out   io.Writer
}

var srv = &server{cfg: &config{Timeout: 3 * time.Second, Name: "httpserver"}, out: os.Stdout}

// handle serves every request: it logs what it served, sleeps under /slow/, and answers.
//
//go:noinline
func handle(w http.ResponseWriter, r *http.Request) {
	tags := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	srv.record(r, tags)
	if strings.HasPrefix(r.URL.Path, "/slow/") {
		time.Sleep(srv.sleep)
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)
}

// record logs one served request (its line is the oracle) and counts it.
//
//go:noinline
func (s *server) record(r *http.Request, tags []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Hits++
	fmt.Fprintf(s.out, "served %q %q %q\n", r.Method, r.URL.Path, r.Host)
	return len(tags)
}

// hotSink keeps main.hot's work observable.
var hotSink int

// hot is the benchmark's traced function: a request, like main.handle's, and a counter.
//
//go:noinline
func hot(r *http.Request, i int) {
	hotSink += len(r.Method) + i
}

// runHot calls main.hot n times and prints the time per call.
func runHot(n int) {
	r, err := http.NewRequest("GET", "http://a.example/foo/bar", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		hot(r, i)
	}
	fmt.Printf("HOT_NS_PER_CALL %.1f\n", float64(time.Since(start).Nanoseconds())/float64(n))
}

func main() {
	rounds := flag.Int("rounds", 3, "rounds of the request list to send")
	hotCalls := flag.Int("hot", 0, "call main.hot this many times instead of serving")
	delay := flag.Duration("delay", 0, "with -hot: wait this long first (for a tracer to attach)")
	concurrency := flag.Int("concurrency", 1, "clients sending at once")
	flag.DurationVar(&srv.sleep, "sleep", 25*time.Millisecond, "how long /slow/ requests sleep")
	flag.Parse()
	if *hotCalls > 0 {
		time.Sleep(*delay)
		runHot(*hotCalls)
		return
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(ln, http.HandlerFunc(handle))
	base := "http://" + ln.Addr().String()

	jobs := make(chan request)
	var wg sync.WaitGroup
	failed := false
	var failMu sync.Mutex
	for c := 0; c < *concurrency; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: false}}
			for q := range jobs {
				req, err := http.NewRequest(q.method, base+q.path, nil)
				if err == nil {
					req.Host = q.host
					var resp *http.Response
					resp, err = client.Do(req)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
				if err != nil {
					failMu.Lock()
					failed = true
					failMu.Unlock()
					fmt.Fprintln(os.Stderr, err)
				}
			}
		}()
	}
	for i := 0; i < *rounds; i++ {
		for _, q := range requests {
			jobs <- q
		}
	}
	close(jobs)
	wg.Wait()
	srv.mu.Lock()
	fmt.Printf("requests %d\n", srv.Hits)
	srv.mu.Unlock()
	if failed {
		os.Exit(1)
	}
}
