package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Store is what the server needs of a store. *storage.Store implements it;
// tests wrap it to inject faults. Implementations must be safe for
// concurrent use: every request calls it from its own goroutine.
// AppendWith must not keep recs, nor any byte slice or map in them, after
// it returns: the server reuses that memory for later requests
// (*storage.Store copies the records before it enqueues them).
type Store interface {
	AppendWith(ctx context.Context, stream string, opts storage.AppendOptions, recs ...storage.Record) (storage.AppendResult, error)
	Read(ctx context.Context, stream string, from uint64, limit int) ([]storage.StoredRecord, error)
	ReadFromTime(ctx context.Context, stream string, t time.Time, limit int) ([]storage.StoredRecord, error)
	ReadGlobal(ctx context.Context, fromSeq uint64, limit int) ([]storage.StoredRecord, error)
	Wait(ctx context.Context, stream string, offset uint64) error
	Streams(ctx context.Context) ([]storage.StreamInfo, error)
	StreamInfo(ctx context.Context, stream string) (storage.StreamInfo, error)
	SetCursor(ctx context.Context, stream, name string, offset uint64) error
	Cursor(ctx context.Context, stream, name string) (uint64, error)
	CreateStream(ctx context.Context, stream string, cfg storage.StreamConfig, recs ...storage.Record) (storage.CreateResult, error)
	ForkStream(ctx context.Context, stream, source string, offset, sub uint64, cfg *storage.StreamConfig, recs ...storage.Record) (storage.AppendResult, error)
	CloseStream(ctx context.Context, stream string, opts storage.AppendOptions, recs ...storage.Record) (storage.AppendResult, error)
	DeleteStream(ctx context.Context, stream string) error
	Ready() bool
	Err() error
}

var _ Store = (*storage.Store)(nil)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("httpapi: server closed")

// ErrInsecureListen is returned by CheckListen (and New) for a non-loopback
// address without auth and without AllowInsecureNoAuth.
var ErrInsecureListen = errors.New("httpapi: refusing to serve without auth on a non-loopback address")

// Server is the HTTP API over one store. Create it with New, run it with
// Serve or ListenAndServe, stop it with Shutdown. Its methods are safe for
// concurrent use. The server does not own the store: close the store after
// Shutdown returns.
type Server struct {
	store   Store
	opts    Options
	logger  *slog.Logger
	metrics *Metrics
	limiter *rateLimiter
	echo    *echo.Echo
	http    *http.Server

	// stopCtx is cancelled by Shutdown; every tailing handler derives its
	// context from it and from its request.
	stopCtx  context.Context
	stopTail context.CancelFunc

	mu struct {
		sync.Mutex
		stopping bool
	}
	// tails counts running tailing handlers (hijacked WebSocket connections
	// are invisible to http.Server.Shutdown, so the server tracks them).
	tails sync.WaitGroup
}

// New builds a server over store. opts nil means DefaultOptions().
func New(store Store, opts *Options) (*Server, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidOptions)
	}
	o := *DefaultOptions()
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := CheckListen(o.Addr, o.Tokens != nil, o.AllowInsecureNoAuth); err != nil {
		return nil, err
	}
	s := &Server{store: store, opts: o, logger: o.Logger, metrics: o.Metrics}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	if o.RateLimit > 0 {
		s.limiter = newRateLimiter(o.RateLimit, o.RateBurst)
	}
	if o.Cluster != nil {
		s.registerClusterMetrics()
	}
	s.registerStoreMetrics()
	s.stopCtx, s.stopTail = context.WithCancel(context.Background())
	s.echo = s.routes()
	s.http = &http.Server{
		Addr:              o.Addr,
		Handler:           s.echo,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// CheckListen refuses a non-loopback listen address without auth unless
// insecure is set. An empty host (":8080") listens on every interface and
// counts as non-loopback.
func CheckListen(addr string, auth, insecure bool) error {
	if auth || insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: address %q: %w", ErrInvalidOptions, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q is not a loopback address; give a tokens file, or accept the risk explicitly (--insecure-no-auth)",
		ErrInsecureListen, addr)
}

// Handler is the server's http.Handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.echo }

// Metrics is the server's metrics set.
func (s *Server) Metrics() *Metrics { return s.metrics }

// ListenAndServe listens on Options.Addr and serves until Shutdown.
func (s *Server) ListenAndServe() error {
	l, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve serves on l until Shutdown, then returns ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	s.logger.Info("serving", "addr", l.Addr().String(), "auth", s.opts.Tokens != nil,
		"rate_limit", s.opts.RateLimit, "max_request_bytes", s.opts.MaxRequestBytes, "max_record_bytes", s.opts.MaxRecordBytes)
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops the server gracefully: it stops accepting connections,
// ends every tail (SSE, WebSocket, long-poll), waits for in-flight requests,
// appends included, to finish, and returns. If ctx expires first it closes
// the remaining connections and returns ctx's error. Appends that the store
// acknowledged before that have been answered, or will be found in the
// store: close the store only after Shutdown returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.mu.stopping = true
	s.mu.Unlock()
	s.stopTail()
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	done := make(chan struct{})
	go func() {
		s.tails.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// The tails were cancelled above and end at their next write or
		// wake-up; wait for them so no handler outlives Shutdown.
		<-done
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

func (s *Server) stopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.stopping
}

// beginTail registers a tailing handler; it fails once Shutdown began.
// The caller calls the returned function when it ends.
func (s *Server) beginTail(r *http.Request) (context.Context, func(), bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.stopping {
		return nil, nil, false
	}
	s.tails.Add(1)
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(s.stopCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
		s.tails.Done()
	}, true
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = echo.ExtractIPDirect()
	e.Use(composeOnce(
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			DisablePrintStack: true,
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				s.logger.Error("panic", "request_id", requestID(c), "err", err, "stack", string(stack))
				return err
			},
		}),
		middleware.RequestID(),
		s.accessLog,
		s.cors(),
		middleware.GzipWithConfig(middleware.GzipConfig{
			Level:     5,
			MinLength: 1024,
			Skipper:   gzipSkipper,
		}),
		s.identify,
	))

	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/metrics", s.handleMetrics())
	v1 := e.Group("/v1")
	v1.GET("/openapi.yaml", handleOpenAPI)
	read := s.consistency
	v1.GET("/streams", s.handleStreams, read)
	v1.GET("/streams/:stream", s.handleStreamInfo, read)
	v1.HEAD("/streams/:stream", s.handleStreamHead, read)
	v1.PUT("/streams/:stream", s.handleCreateStream)
	v1.DELETE("/streams/:stream", s.handleDeleteStream)
	v1.POST("/streams/:stream/close", s.handleCloseStream)
	v1.POST("/streams/:stream/records", s.handleAppend)
	v1.GET("/streams/:stream/records", s.handleRead, read)
	v1.GET("/streams/:stream/ws", s.handleWebSocket, read)
	v1.GET("/streams/:stream/append", s.handleAppendSession)
	v1.GET("/streams/:stream/cursors/:name", s.handleGetCursor, read)
	v1.PUT("/streams/:stream/cursors/:name", s.handlePutCursor)
	v1.GET("/records", s.handleGlobal, read)
	// The Durable Streams protocol (durable.go): its own CORS, its own
	// long-poll, over the same streams.
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		v1.Add(m, "/stream/:name", s.handleDS)
	}
	v1.GET("/cluster", s.handleClusterStatus)
	v1.POST("/cluster/nodes", s.handleAddNode)
	v1.DELETE("/cluster/nodes/:id", s.handleRemoveNode)
	return e
}

// cors answers cross-origin requests from Options.CORSOrigins, before auth
// and rate limiting (a preflight carries no token). Off: a pass-through.
func (s *Server) cors() echo.MiddlewareFunc {
	if len(s.opts.CORSOrigins) == 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:  s.opts.CORSOrigins,
		AllowMethods:  []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete},
		AllowHeaders:  CORSAllowHeaders,
		ExposeHeaders: CORSExposeHeaders,
		MaxAge:        600,
	})
}

// composeOnce is the middleware chain mw (first = outermost), built once.
// Echo applies the middleware given to Use anew on every request, around
// the handler its router found, which costs one closure per middleware and
// request. The chain built here ends in a handler that calls that same
// handler (c.Handler(), the next that echo passes), so the result is the
// same with nothing built per request. Unmatched routes (404, 405) go
// through it too: the router sets their handler on the context as well.
func composeOnce(mw ...echo.MiddlewareFunc) echo.MiddlewareFunc {
	var h echo.HandlerFunc = func(c echo.Context) error { return c.Handler()(c) }
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return func(echo.HandlerFunc) echo.HandlerFunc { return h }
}

// gzipSkipper compresses only JSON and NDJSON answers of the v1 API: never
// SSE or WebSocket (they must flush event by event), never /metrics (the
// Prometheus handler compresses on its own).
func gzipSkipper(c echo.Context) bool {
	r := c.Request()
	if !strings.HasPrefix(r.URL.Path, "/v1/") || r.Method == http.MethodHead {
		return true
	}
	if strings.HasSuffix(r.URL.Path, "/ws") || headerValue(r.Header, echo.HeaderUpgrade) != "" {
		return true
	}
	return strings.Contains(headerValue(r.Header, echo.HeaderAccept), mediaSSE)
}

func requestID(c echo.Context) string {
	return headerValue(c.Response().Header(), echo.HeaderXRequestID)
}

// accessLog logs every request with slog and counts it.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			// Write the error now so the status below is the real one.
			c.Error(err)
		}
		req, res := c.Request(), c.Response()
		status := res.Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.countRequest(route, req.Method, status)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		if s.logger.Enabled(req.Context(), level) {
			attrs := []slog.Attr{
				slog.String("request_id", requestID(c)),
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.Int64("bytes_in", req.ContentLength),
				slog.Int64("bytes_out", res.Size),
				slog.String("remote", c.RealIP()),
			}
			if tok, ok := c.Get(tokenContextKey).(*Token); ok {
				attrs = append(attrs, slog.String("token", tok.ID))
			}
			s.logger.LogAttrs(req.Context(), level, "request", attrs...)
		}
		return nil
	}
}

func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(c echo.Context) error {
	switch {
	case s.stopping():
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "shutting down")
	case s.opts.Cluster != nil && !s.opts.Cluster.Ready():
		st := s.opts.Cluster.Status()
		msg := "no leader is known"
		if st.Error != "" {
			msg = "cluster node stopped: " + st.Error
		}
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "%s", msg)
	case !s.store.Ready():
		msg := "store not ready"
		if err := s.store.Err(); err != nil {
			msg = "store failed: " + err.Error()
		}
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "%s", msg)
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleMetrics() echo.HandlerFunc {
	h := promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)})
	return func(c echo.Context) error {
		if err := s.authorize(c, PermAdmin, ""); err != nil {
			return err
		}
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
