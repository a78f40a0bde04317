package httpapi

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Permission is a set of rights a token carries. A plain value, safe to
// copy and to share.
type Permission uint8

// Permissions. Admin implies the others.
const (
	PermRead Permission = 1 << iota
	PermAppend
	PermAdmin
)

func (p Permission) String() string {
	var parts []string
	for _, x := range []struct {
		p    Permission
		name string
	}{{PermRead, "read"}, {PermAppend, "append"}, {PermAdmin, "admin"}} {
		if p&x.p != 0 {
			parts = append(parts, x.name)
		}
	}
	return strings.Join(parts, ",")
}

// MinTokenLength is the shortest token a tokens file may hold.
const MinTokenLength = 16

// ErrTokensFile is wrapped by every error LoadTokens and ParseTokens return.
var ErrTokensFile = errors.New("httpapi: bad tokens file")

// Token is one bearer token's grant. It is immutable and safe for
// concurrent use.
type Token struct {
	// ID is a fingerprint safe to log: the first 12 hex digits of the
	// token's SHA-256.
	ID string
	// Perms are the token's permissions.
	Perms Permission
	// Prefixes limit the token to streams whose name starts with one of
	// them. Empty means every stream.
	Prefixes []string
}

// Allows reports whether the token grants perm on stream ("" means no
// particular stream, e.g. the stream listing).
func (t *Token) Allows(perm Permission, stream string) bool {
	if t.Perms&PermAdmin == 0 && t.Perms&perm != perm {
		return false
	}
	return stream == "" || t.coversStream(stream)
}

func (t *Token) coversStream(stream string) bool {
	if len(t.Prefixes) == 0 {
		return true
	}
	for _, p := range t.Prefixes {
		if strings.HasPrefix(stream, p) {
			return true
		}
	}
	return false
}

// TokenSet is the set of bearer tokens a server accepts. It is immutable
// after parsing and safe for concurrent use. Lookups hash the presented
// token, so their time does not depend on how much of it matches.
type TokenSet struct {
	byHash map[[sha256.Size]byte]*Token
}

// Len is the number of tokens.
func (s *TokenSet) Len() int { return len(s.byHash) }

// Lookup returns the grant of a presented token, or nil.
func (s *TokenSet) Lookup(token string) *Token {
	return s.byHash[sha256.Sum256([]byte(token))]
}

// LoadTokens reads a tokens file. See ParseTokens for the format.
func LoadTokens(path string) (*TokenSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokensFile, err)
	}
	defer f.Close()
	set, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// ParseTokens parses the tokens file format: one token per line,
//
//	TOKEN PERMISSIONS [PREFIXES]
//
// separated by spaces or tabs. PERMISSIONS is a comma-separated subset of
// read, append and admin (admin implies the others). PREFIXES is an
// optional comma-separated list of stream-name prefixes the token is
// limited to; "*" or nothing means every stream. A TOKEN has at least
// MinTokenLength printable ASCII characters. Blank lines and lines starting
// with # are ignored. A file with no token is an error: it would lock every
// client out.
func ParseTokens(r io.Reader) (*TokenSet, error) {
	set := &TokenSet{byHash: map[[sha256.Size]byte]*Token{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) < 2 || len(fields) > 3 {
			return nil, fmt.Errorf("%w: line %d: want TOKEN PERMISSIONS [PREFIXES]", ErrTokensFile, line)
		}
		tok, err := parseTokenLine(fields)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrTokensFile, line, err)
		}
		h := sha256.Sum256([]byte(fields[0]))
		if _, dup := set.byHash[h]; dup {
			return nil, fmt.Errorf("%w: line %d: duplicate token", ErrTokensFile, line)
		}
		set.byHash[h] = tok
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokensFile, err)
	}
	if len(set.byHash) == 0 {
		return nil, fmt.Errorf("%w: no tokens", ErrTokensFile)
	}
	return set, nil
}

func parseTokenLine(fields []string) (*Token, error) {
	secret := fields[0]
	if len(secret) < MinTokenLength {
		return nil, fmt.Errorf("token shorter than %d characters", MinTokenLength)
	}
	for i := 0; i < len(secret); i++ {
		if secret[i] <= ' ' || secret[i] > '~' {
			return nil, errors.New("token has a character that is not printable ASCII")
		}
	}
	h := sha256.Sum256([]byte(secret))
	tok := &Token{ID: hex.EncodeToString(h[:6])}
	for _, p := range strings.Split(fields[1], ",") {
		switch strings.TrimSpace(p) {
		case "read":
			tok.Perms |= PermRead
		case "append":
			tok.Perms |= PermAppend
		case "admin":
			tok.Perms |= PermAdmin
		default:
			return nil, fmt.Errorf("unknown permission %q (want read, append or admin)", p)
		}
	}
	if len(fields) == 3 && fields[2] != "*" {
		for _, p := range strings.Split(fields[2], ",") {
			if p == "" {
				return nil, errors.New("empty stream prefix")
			}
			tok.Prefixes = append(tok.Prefixes, p)
		}
	}
	return tok, nil
}

const tokenContextKey = "badbatch.token"

// bearerToken extracts the token of an "Authorization: Bearer T" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get(echo.HeaderAuthorization)
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

// publicPath reports whether a path is served without a token.
func publicPath(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/v1/openapi.yaml":
		return true
	}
	return false
}

// identify resolves the token (when auth is on), applies the rate limit
// (keyed by token, else by client IP) and then rejects unauthenticated
// requests with 401. Rate limiting first means a flood of bad tokens is
// limited too.
func (s *Server) identify(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		public := publicPath(req.URL.Path)
		var tok *Token
		authErr := (*apiError)(nil)
		if s.opts.Tokens != nil && !public {
			secret, ok := bearerToken(req)
			switch {
			case !ok:
				authErr = newError(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token (Authorization: Bearer TOKEN)")
			case s.opts.Cluster != nil && req.Method == http.MethodPost && req.URL.Path == "/v1/cluster/nodes" && s.isJoinToken(c):
				// A joining node: handleAddNode checks the join token.
			default:
				if tok = s.opts.Tokens.Lookup(secret); tok == nil {
					authErr = newError(http.StatusUnauthorized, CodeUnauthorized, "unknown token")
				}
			}
		}
		if s.limiter != nil && !public {
			if ok, retry := s.limiter.allow(limitKey(c, tok), time.Now()); !ok {
				secs := int((retry + 999_999_999) / 1_000_000_000)
				c.Response().Header().Set("Retry-After", fmt.Sprint(max(secs, 1)))
				return newError(http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded; retry after %ds", max(secs, 1))
			}
		}
		if authErr != nil {
			return authErr
		}
		if tok != nil {
			c.Set(tokenContextKey, tok)
		}
		return next(c)
	}
}

// authorize checks that the request may do perm on stream. With auth off
// everything is allowed.
func (s *Server) authorize(c echo.Context, perm Permission, stream string) error {
	if s.opts.Tokens == nil {
		return nil
	}
	tok, _ := c.Get(tokenContextKey).(*Token)
	if tok == nil {
		return newError(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token")
	}
	if !tok.Allows(perm, stream) {
		if stream == "" {
			return newError(http.StatusForbidden, CodeForbidden, "token lacks the %s permission", perm)
		}
		return newError(http.StatusForbidden, CodeForbidden, "token lacks the %s permission on stream %q", perm, stream)
	}
	return nil
}

// visibleStream reports whether the request's token covers stream (for
// listings and the global log, which filter instead of failing).
func (s *Server) visibleStream(c echo.Context, stream string) bool {
	if s.opts.Tokens == nil {
		return true
	}
	tok, _ := c.Get(tokenContextKey).(*Token)
	return tok != nil && tok.coversStream(stream)
}
