// Command stdlibtypes holds one value of each standard-library type that gotrace knows
// without DWARF (src/gobin/runtime/stdlib_types.rs): built with each Go toolchain, its DWARF is where the
// layouts embedded in gotrace come from (tests/stdlib_types.rs, scripts/gen-stdlib-types.sh).
// Every field of `roots` is a root type; the linker writes each one's DWARF, and with it
// every type they contain.
package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

type rootTypes struct {
	HTTPRequest         http.Request
	HTTPRequestPtr      *http.Request
	HTTPResponse        http.Response
	HTTPResponsePtr     *http.Response
	HTTPHeader          http.Header
	HTTPResponseWriter  http.ResponseWriter
	HTTPHandler         http.Handler
	HTTPHandlerFunc     http.HandlerFunc
	HTTPCookie          http.Cookie
	HTTPCookiePtr       *http.Cookie
	HTTPCookies         []*http.Cookie
	HTTPClient          http.Client
	HTTPClientPtr       *http.Client
	HTTPServer          http.Server
	HTTPServerPtr       *http.Server
	HTTPRoundTripper    http.RoundTripper
	URL                 url.URL
	URLPtr              *url.URL
	URLValues           url.Values
	URLUserinfo         url.Userinfo
	URLUserinfoPtr      *url.Userinfo
	Context             context.Context
	CancelFunc          context.CancelFunc
	Time                time.Time
	TimePtr             *time.Time
	Duration            time.Duration
	Location            time.Location
	LocationPtr         *time.Location
	Month               time.Month
	Weekday             time.Weekday
	Timer               time.Timer
	TimerPtr            *time.Timer
	Ticker              time.Ticker
	TickerPtr           *time.Ticker
	Error               error
	Bytes               []byte
	Strings             []string
	BytesBuffer         bytes.Buffer
	BytesBufferPtr      *bytes.Buffer
	BytesReader         bytes.Reader
	BytesReaderPtr      *bytes.Reader
	StringsBuilder      strings.Builder
	StringsBuilderPtr   *strings.Builder
	StringsReader       strings.Reader
	StringsReaderPtr    *strings.Reader
	Mutex               sync.Mutex
	MutexPtr            *sync.Mutex
	RWMutex             sync.RWMutex
	RWMutexPtr          *sync.RWMutex
	WaitGroup           sync.WaitGroup
	WaitGroupPtr        *sync.WaitGroup
	Once                sync.Once
	OncePtr             *sync.Once
	SyncMap             sync.Map
	SyncMapPtr          *sync.Map
	Pool                sync.Pool
	PoolPtr             *sync.Pool
	Cond                sync.Cond
	CondPtr             *sync.Cond
	File                os.File
	FilePtr             *os.File
	FileMode            fs.FileMode
	FileInfo            fs.FileInfo
	Signal              os.Signal
	NetConn             net.Conn
	NetListener         net.Listener
	NetAddr             net.Addr
	NetIP               net.IP
	NetIPNet            net.IPNet
	NetIPNetPtr         *net.IPNet
	NetTCPAddr          net.TCPAddr
	NetTCPAddrPtr       *net.TCPAddr
	NetUDPAddr          net.UDPAddr
	NetUDPAddrPtr       *net.UDPAddr
	NetTCPConn          net.TCPConn
	NetTCPConnPtr       *net.TCPConn
	NetUDPConn          net.UDPConn
	NetUDPConnPtr       *net.UDPConn
	NetTCPListener      net.TCPListener
	NetTCPListenerPtr   *net.TCPListener
	IOReader            io.Reader
	IOWriter            io.Writer
	IOReadCloser        io.ReadCloser
	IOWriteCloser       io.WriteCloser
	IOReadWriter        io.ReadWriter
	IOReadWriteCloser   io.ReadWriteCloser
	BufioReader         bufio.Reader
	BufioReaderPtr      *bufio.Reader
	BufioWriter         bufio.Writer
	BufioWriterPtr      *bufio.Writer
	BufioReadWriter     bufio.ReadWriter
	BufioReadWriterPtr  *bufio.ReadWriter
}

var roots rootTypes

func main() {
	println(&roots)
}
