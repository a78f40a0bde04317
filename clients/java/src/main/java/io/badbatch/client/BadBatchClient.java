package io.badbatch.client;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * The BadBatch client: appends, reads, tails, streams and cursors over the HTTP API v1.
 *
 * <p><b>Thread safety.</b> A client is safe for concurrent use by any number of threads and pools
 * its connections (one {@link HttpClient}, HTTP/1.1 keep-alive): make one per server and share
 * it. {@link Tail}s are single-consumer: one thread iterates a tail at a time, though
 * {@link Tail#close()} may be called from any thread.
 *
 * <p><b>Retries.</b> Retryable failures (connection errors, {@code 429}, {@code 503}, and for
 * reads {@code 500}, {@code 502}, {@code 504}) are retried up to {@code maxRetries} times with
 * exponential backoff and full jitter, honouring {@code Retry-After}. An append is retried only
 * under an idempotency key (the caller's, or one the client generates per call when
 * {@code generateIdempotencyKeys} is on, the default), or when it surely never reached the server
 * (connection refused, {@code 429}, {@code 503 no_leader}). A follower's {@code 307} is followed.
 *
 * <p><b>Errors.</b> Every failure is a {@link BadBatchException} (unchecked), of the subclass of
 * its {@link ErrorKind}.
 */
public final class BadBatchClient implements AutoCloseable {
    private static final int MAX_REDIRECTS = 5;
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private final String base;
    private final ClientOptions opts;
    private final HttpClient http;
    private final String authorization;
    final ScheduledExecutorService timers;

    private BadBatchClient(String base, ClientOptions opts) {
        this.base = base;
        this.opts = opts;
        this.authorization = opts.token().map(t -> "Bearer " + t).orElse(null);
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(opts.connectTimeout())
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
        ScheduledThreadPoolExecutor stpe = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "badbatch-client-timer");
            t.setDaemon(true);
            return t;
        });
        // Every call schedules a deadline and cancels it when it ends: drop cancelled ones at once,
        // or a busy client would keep requestTimeout's worth of them queued.
        stpe.setRemoveOnCancelPolicy(true);
        this.timers = stpe;
    }

    /** A client for the server at {@code url} (e.g. {@code http://127.0.0.1:8080}) with default options. */
    public static BadBatchClient create(String url) {
        return create(url, ClientOptions.defaults());
    }

    /**
     * A client for the server at {@code url} with these options.
     *
     * @throws InvalidOptionsException for a URL that is not http or https
     */
    public static BadBatchClient create(String url, ClientOptions options) {
        Objects.requireNonNull(options, "options");
        if (url == null) {
            throw invalid("url: null");
        }
        URI u;
        try {
            u = URI.create(url);
        } catch (IllegalArgumentException e) {
            throw invalid("url " + url + ": " + e.getMessage());
        }
        if (u.getScheme() == null || !(u.getScheme().equals("http") || u.getScheme().equals("https"))
                || u.getHost() == null || u.getRawQuery() != null || u.getRawFragment() != null) {
            throw invalid("url " + url + ": want http(s)://host[:port][/path]");
        }
        String b = url;
        while (b.endsWith("/")) {
            b = b.substring(0, b.length() - 1);
        }
        return new BadBatchClient(b, options);
    }

    /** The options in use (defaults filled in). */
    public ClientOptions options() {
        return opts;
    }

    /** Stops the client's timer thread. Open tails are not closed; calls already made finish. */
    @Override
    public void close() {
        timers.shutdownNow();
    }

    // ---------------------------------------------------------------- appends

    /** Appends one record. */
    public AppendResult append(String stream, Record record) {
        return append(stream, record, AppendOptions.NONE);
    }

    /** Appends one record under these options. */
    public AppendResult append(String stream, Record record, AppendOptions options) {
        Objects.requireNonNull(record, "record");
        return appendBatch(stream, List.of(record), options);
    }

    /** Appends records atomically: all get consecutive offsets, or none is stored. */
    public AppendResult appendBatch(String stream, List<Record> records) {
        return appendBatch(stream, records, AppendOptions.NONE);
    }

    /** Appends records atomically under these options. */
    public AppendResult appendBatch(String stream, List<Record> records, AppendOptions options) {
        Objects.requireNonNull(records, "records");
        Objects.requireNonNull(options, "options");
        if (records.isEmpty()) {
            throw invalid("records: empty (an append needs at least one record)");
        }
        for (Record r : records) {
            Objects.requireNonNull(r, "record");
        }
        Call c = new Call("POST", streamPath(stream) + "/records", options.timeout().orElse(null));
        c.body = Wire.encodeRecords(records);
        c.contentType = "application/json";
        String key = options.idempotencyKey().orElse(null);
        if (key == null && opts.generateIdempotencyKeys()) {
            key = newIdempotencyKey();
        }
        c.idempotencyKey = key;
        c.producer = options.producer().orElse(null);
        c.closeStream = options.close();
        c.streamSeq = options.streamSeq().orElse(null);
        // A producer's seq makes a repeat harmless too: the server answers it with the first result.
        c.retrySafe = key != null || c.producer != null;
        c.isRead = false;
        if (options.expectedLastOffset().isPresent()) {
            c.expectedLastOffset = Long.toString(options.expectedLastOffset().getAsLong());
        }
        byte[] body = execute(c);
        return decode(() -> Wire.decodeAppendResult(body));
    }

    // ---------------------------------------------------------------- stream lifecycle

    /**
     * Creates a stream with a configuration. Answers true when it created it, false when the
     * stream existed with the same configuration (nothing changed); another configuration is a
     * {@link StreamExistsException}. Safe to retry.
     */
    public boolean createStream(String stream, StreamConfig config) {
        return createStream(stream, config, null);
    }

    /** Creates a stream; {@code timeout} bounds the whole call, retries included (null: none). */
    public boolean createStream(String stream, StreamConfig config, Duration timeout) {
        Objects.requireNonNull(config, "config");
        Map<String, Object> body = new LinkedHashMap<>();
        Wire.putStreamConfig(body, config);
        Call c = putStream(stream, body, timeout);
        execute(c);
        return c.status == 201;
    }

    /**
     * Creates {@code stream} as a fork of {@code source} at {@code offset}: it reads the source's
     * records below {@code offset}, then its own, with the source's configuration. A fork onto an
     * existing stream is a {@link StreamExistsException}; a missing source a
     * {@link NotFoundException}.
     */
    public void forkStream(String stream, String source, long offset) {
        forkStream(stream, source, offset, null, null);
    }

    /** Creates a fork with a configuration of its own (null: the source's); {@code timeout} as above. */
    public void forkStream(String stream, String source, long offset, StreamConfig config, Duration timeout) {
        Objects.requireNonNull(source, "source");
        if (offset < 0) {
            throw invalid("offset " + offset + ": want 0 or more");
        }
        segment(source, "source stream");
        Map<String, Object> fork = new LinkedHashMap<>();
        fork.put("stream", source);
        fork.put("offset", offset);
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("fork", fork);
        if (config != null) {
            Wire.putStreamConfig(body, config);
        }
        execute(putStream(stream, body, timeout));
    }

    private Call putStream(String stream, Map<String, Object> body, Duration timeout) {
        Call c = new Call("PUT", streamPath(stream), timeout);
        c.body = io.badbatch.client.json.Json.write(body).getBytes(StandardCharsets.UTF_8);
        c.contentType = "application/json";
        c.retrySafe = true; // an equal configuration again changes nothing
        c.isRead = false;
        return c;
    }

    /**
     * Closes a stream: appends are refused ({@link StreamClosedException}) and tails end after its
     * last record. Closing a closed stream again succeeds; safe to retry. To close with a final
     * append atomically, append with {@link AppendOptions.Builder#close(boolean)}.
     */
    public void closeStream(String stream) {
        closeStream(stream, null);
    }

    public void closeStream(String stream, Duration timeout) {
        Call c = new Call("POST", streamPath(stream) + "/close", timeout);
        c.retrySafe = true;
        c.isRead = false;
        execute(c);
    }

    /**
     * Deletes a stream ({@link NotFoundException} when there is none). A stream that forks still
     * read is soft-deleted: it answers {@link GoneException} until its last fork is deleted. Not
     * retried after an unknown outcome: a repeat of a delete that took effect answers not_found.
     */
    public void deleteStream(String stream) {
        deleteStream(stream, null);
    }

    public void deleteStream(String stream, Duration timeout) {
        Call c = new Call("DELETE", streamPath(stream), timeout);
        c.retrySafe = false;
        c.isRead = false;
        execute(c);
    }

    /** A new idempotency key: 128 random bits, hex. */
    public static String newIdempotencyKey() {
        byte[] b = new byte[16];
        RANDOM.nextBytes(b);
        char[] out = new char[32];
        for (int i = 0; i < 16; i++) {
            out[2 * i] = HEX[(b[i] >> 4) & 15];
            out[2 * i + 1] = HEX[b[i] & 15];
        }
        return new String(out);
    }

    // ---------------------------------------------------------------- reads

    /** Reads one page from {@code from}, of the server's default size (100). */
    public Page read(String stream, Position from) {
        return read(stream, from, 0, null);
    }

    /** Reads one page of at most {@code limit} records (0: the server's default). */
    public Page read(String stream, Position from, int limit) {
        return read(stream, from, limit, null);
    }

    /** Reads one page; {@code timeout} bounds the whole call, retries included (null: none). */
    public Page read(String stream, Position from, int limit, Duration timeout) {
        Objects.requireNonNull(from, "from");
        checkLimit(limit);
        StringBuilder q = new StringBuilder(streamPath(stream)).append("/records?").append(from.query());
        if (limit > 0) {
            q.append("&limit=").append(limit);
        }
        Call c = new Call("GET", q.toString(), timeout);
        byte[] body = execute(c);
        return decode(() -> Wire.decodePage(body, stream));
    }

    /** Reads one page of the global log from {@code fromSeq}, of the server's default size. */
    public GlobalPage readGlobal(long fromSeq) {
        return readGlobal(fromSeq, 0, null);
    }

    /** Reads one page of the global log of at most {@code limit} records (0: the server's default). */
    public GlobalPage readGlobal(long fromSeq, int limit) {
        return readGlobal(fromSeq, limit, null);
    }

    /** Reads one page of the global log; {@code timeout} bounds the whole call (null: none). */
    public GlobalPage readGlobal(long fromSeq, int limit, Duration timeout) {
        if (fromSeq < 0) {
            throw invalid("fromSeq " + fromSeq + ": want 0 or more");
        }
        checkLimit(limit);
        String q = "/v1/records?from_seq=" + fromSeq + (limit > 0 ? "&limit=" + limit : "");
        byte[] body = execute(new Call("GET", q, timeout));
        return decode(() -> Wire.decodeGlobalPage(body));
    }

    /**
     * Follows a stream live from {@code from}: an {@link java.util.Iterator} (and
     * {@link Tail#stream()}) of every record once, in offset order, across reconnects and server
     * restarts. The first connection is made here, so a permanent error (not found, forbidden,
     * unauthorized, gone) is thrown by this call; later failures are retried for as long as the
     * tail is open. When the stream is closed, the tail ends after its last record
     * ({@code hasNext()} answers false). Close it when done.
     */
    public Tail tail(String stream, Position from) {
        Objects.requireNonNull(from, "from");
        String path = streamPath(stream) + "/records";
        if (from.type == Position.Type.LATEST) {
            // Pin "latest" to an offset, so that a reconnect before the first record misses nothing.
            from = Position.offset(streamInfo(stream).nextOffset());
        } else if (from.type == Position.Type.TIME) {
            // The same for a time: the first record at or after it, or the live end.
            Page p = read(stream, from, 1);
            from = Position.offset(p.records().isEmpty() ? p.nextOffset() : p.records().get(0).offset());
        }
        return new Tail(this, stream, path, from);
    }

    /**
     * A tail as a {@link java.util.concurrent.Flow.Publisher}: every subscriber gets its own tail
     * from {@code from}, on a delivery thread of its own, with the subscriber's demand as
     * backpressure. Errors arrive as {@code onError} with the {@link BadBatchException};
     * cancelling the subscription closes the tail; a closed stream ends it with {@code onComplete}.
     */
    public java.util.concurrent.Flow.Publisher<StoredRecord> tailPublisher(String stream, Position from) {
        Objects.requireNonNull(stream, "stream");
        Objects.requireNonNull(from, "from");
        return new TailPublisher(this, stream, from);
    }

    // ---------------------------------------------------------------- streams and cursors

    /** The streams the token may read. */
    public List<StreamInfo> streams() {
        return streams(null);
    }

    public List<StreamInfo> streams(Duration timeout) {
        byte[] body = execute(new Call("GET", "/v1/streams", timeout));
        return decode(() -> Wire.decodeStreams(body));
    }

    /** One stream's information ({@link NotFoundException} if it was never written). */
    public StreamInfo streamInfo(String stream) {
        return streamInfo(stream, null);
    }

    public StreamInfo streamInfo(String stream, Duration timeout) {
        byte[] body = execute(new Call("GET", streamPath(stream), timeout));
        return decode(() -> Wire.decodeStreamInfo(body));
    }

    /** Stores the named consumer cursor of a stream. */
    public void setCursor(String stream, String name, long offset) {
        setCursor(stream, name, offset, null);
    }

    public void setCursor(String stream, String name, long offset, Duration timeout) {
        if (offset < 0) {
            throw invalid("offset " + offset + ": want 0 or more");
        }
        Call c = new Call("PUT", streamPath(stream) + "/cursors/" + segment(name, "cursor"), timeout);
        c.body = ("{\"offset\":" + offset + "}").getBytes(StandardCharsets.US_ASCII);
        c.contentType = "application/json";
        c.retrySafe = true; // setting a cursor twice is setting it once
        c.isRead = false;
        execute(c);
    }

    /** Reads the named consumer cursor ({@link NotFoundException} if it was never set). */
    public long cursor(String stream, String name) {
        return cursor(stream, name, null);
    }

    public long cursor(String stream, String name, Duration timeout) {
        byte[] body = execute(new Call("GET", streamPath(stream) + "/cursors/" + segment(name, "cursor"), timeout));
        return decode(() -> Wire.decodeCursor(body));
    }

    // ---------------------------------------------------------------- plumbing

    private static String streamPath(String stream) {
        return "/v1/streams/" + segment(stream, "stream");
    }

    /** Percent-encodes a path segment; names that cannot be one are refused here. */
    private static String segment(String s, String what) {
        Objects.requireNonNull(s, what);
        if (s.isEmpty() || s.equals(".") || s.equals("..")) {
            BadBatchException.Details d = new BadBatchException.Details(ErrorKind.INVALID_STREAM, "invalid_stream",
                    what + " name \"" + s + "\": want [A-Za-z0-9][A-Za-z0-9._-]{0,199}", 400);
            throw BadBatchException.create(d);
        }
        StringBuilder b = null;
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < bytes.length; i++) {
            int c = bytes[i] & 0xff;
            boolean safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
                    || c == '.' || c == '_' || c == '~';
            if (b == null) {
                if (safe) {
                    continue;
                }
                b = new StringBuilder(s.length() + 8);
                b.append(new String(bytes, 0, i, StandardCharsets.US_ASCII));
            }
            if (safe) {
                b.append((char) c);
            } else {
                b.append('%').append(HEX[c >> 4]).append(HEX[c & 15]);
            }
        }
        return b == null ? s : b.toString();
    }

    private static void checkLimit(int limit) {
        if (limit < 0) {
            throw invalid("limit " + limit + ": want 0 (the server's default) or more");
        }
    }

    static InvalidOptionsException invalid(String msg) {
        return (InvalidOptionsException) BadBatchException.of(ErrorKind.INVALID_OPTIONS, msg);
    }

    private interface Decoder<T> {
        T get();
    }

    private static <T> T decode(Decoder<T> d) {
        try {
            return d.get();
        } catch (RuntimeException e) {
            if (e instanceof BadBatchException) {
                throw e;
            }
            throw BadBatchException.of(ErrorKind.INTERNAL, "cannot decode the server's answer: " + e.getMessage(), e);
        }
    }

    /** One call: a request and how it may be retried. */
    static final class Call {
        final String method;
        final String pathAndQuery;
        final long deadline; // System.nanoTime() based; 0: none
        byte[] body;
        String contentType;
        String idempotencyKey;
        String expectedLastOffset;
        String accept = "application/json";
        String lastEventId;
        Producer producer;
        boolean closeStream;
        String streamSeq;
        int status; // the 2xx status of the answer, once it came
        boolean retrySafe = true; // may be retried after it possibly reached the server
        boolean isRead = true;

        Call(String method, String pathAndQuery, Duration timeout) {
            this.method = method;
            this.pathAndQuery = pathAndQuery;
            if (timeout != null) {
                if (timeout.isNegative() || timeout.isZero()) {
                    throw invalid("timeout " + timeout + ": want more than 0");
                }
                long d = System.nanoTime() + timeout.toNanos();
                this.deadline = d == 0 ? 1 : d;
            } else {
                this.deadline = 0;
            }
        }

        long remainingNanos() {
            return deadline == 0 ? Long.MAX_VALUE : deadline - System.nanoTime();
        }
    }

    /** Runs a call with retries; answers the 2xx body or throws. */
    byte[] execute(Call c) {
        int attempt = 0;
        while (true) {
            BadBatchException err;
            boolean retryable;
            long remaining = c.remainingNanos();
            if (remaining <= 0) {
                throw BadBatchException.of(ErrorKind.TIMEOUT, c.method + " " + c.pathAndQuery + ": the call's timeout passed");
            }
            Duration attemptTimeout = remaining < opts.requestTimeout().toNanos() ? Duration.ofNanos(remaining)
                    : opts.requestTimeout();
            try {
                HttpResponse<byte[]> resp = sendFollowingRedirects(c, attemptTimeout);
                int status = resp.statusCode();
                if (status >= 200 && status < 300) {
                    c.status = status;
                    return resp.body();
                }
                err = errorFrom(resp.statusCode(), resp.headers(), resp.body());
                retryable = retryableStatus(c, status, err.kind());
            } catch (BadBatchException e) {
                throw e; // made while following redirects: final
            } catch (HttpConnectTimeoutException | ConnectException e) {
                err = BadBatchException.of(ErrorKind.CONNECTION, c.method + " " + c.pathAndQuery + ": " + describe(e), e);
                retryable = true; // never reached the server
            } catch (HttpTimeoutException | java.util.concurrent.TimeoutException e) {
                err = BadBatchException.of(ErrorKind.TIMEOUT,
                        c.method + " " + c.pathAndQuery + ": no answer within " + attemptTimeout, e);
                retryable = c.retrySafe;
            } catch (IOException e) {
                err = BadBatchException.of(ErrorKind.CONNECTION, c.method + " " + c.pathAndQuery + ": " + describe(e), e);
                retryable = c.retrySafe;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw BadBatchException.of(ErrorKind.CONNECTION, c.method + " " + c.pathAndQuery + ": interrupted", e);
            }
            if (!retryable || attempt >= opts.maxRetries()) {
                throw err;
            }
            long delay = retryDelayNanos(err, attempt);
            if (delay < 0) {
                throw err; // Retry-After above maxRetryAfter
            }
            if (c.deadline != 0 && c.remainingNanos() <= delay) {
                throw err;
            }
            try {
                TimeUnit.NANOSECONDS.sleep(delay);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw err;
            }
            attempt++;
        }
    }

    private static String describe(Throwable e) {
        String m = e.getMessage();
        return e.getClass().getSimpleName() + (m == null ? "" : " " + m);
    }

    private static boolean retryableStatus(Call c, int status, ErrorKind kind) {
        switch (status) {
            case 429:
                return true; // nothing was stored
            case 503:
                // no_leader stores nothing; unavailable (a journal failed
                // mid-write, a store closed under the append) leaves the
                // outcome unknown.
                return kind == ErrorKind.NO_LEADER || c.retrySafe;
            case 502:
            case 504:
                return c.retrySafe;
            case 500:
                return c.isRead;
            default:
                return false;
        }
    }

    /**
     * The delay before retry number {@code attempt + 1}: Retry-After when the server gave one
     * (-1 when it is above maxRetryAfter), else full jitter over the exponential backoff.
     */
    long retryDelayNanos(BadBatchException err, int attempt) {
        if (err.retryAfter().isPresent()) {
            Duration ra = err.retryAfter().get();
            if (ra.compareTo(opts.maxRetryAfter()) > 0) {
                return -1;
            }
            return ra.toNanos();
        }
        return backoffNanos(attempt);
    }

    /** Full jitter: uniform in [0, min(maxBackoff, retryBackoff * 2^attempt)]. */
    long backoffNanos(int attempt) {
        long base = opts.retryBackoff().toNanos();
        long cap = opts.maxBackoff().toNanos();
        long ceiling = attempt >= 62 || base > (cap >> Math.min(attempt, 62)) ? cap : base << attempt;
        ceiling = Math.min(ceiling, cap);
        return ThreadLocalRandom.current().nextLong(ceiling + 1);
    }

    private HttpRequest.Builder requestBuilder(URI uri, Call c, boolean withToken) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).header("User-Agent", opts.userAgent()).header("Accept", c.accept);
        if (withToken && authorization != null) {
            b.header("Authorization", authorization);
        }
        if (c.idempotencyKey != null) {
            b.header("Idempotency-Key", c.idempotencyKey);
        }
        if (c.expectedLastOffset != null) {
            b.header("Expected-Last-Offset", c.expectedLastOffset);
        }
        if (c.producer != null) {
            b.header("Producer-Id", c.producer.id());
            b.header("Producer-Epoch", Long.toString(c.producer.epoch()));
            b.header("Producer-Seq", Long.toString(c.producer.seq()));
        }
        if (c.closeStream) {
            b.header("Stream-Closed", "true");
        }
        if (c.streamSeq != null) {
            b.header("Stream-Seq", c.streamSeq);
        }
        if (c.lastEventId != null) {
            b.header("Last-Event-ID", c.lastEventId);
        }
        if (c.body != null) {
            b.header("Content-Type", c.contentType);
            b.method(c.method, HttpRequest.BodyPublishers.ofByteArray(c.body));
        } else {
            b.method(c.method, HttpRequest.BodyPublishers.noBody());
        }
        return b;
    }

    /** One attempt, following 307/308 (cluster followers) by hand. */
    private HttpResponse<byte[]> sendFollowingRedirects(Call c, Duration timeout)
            throws IOException, InterruptedException, java.util.concurrent.TimeoutException {
        return sendFollowing(c, timeout, HttpResponse.BodyHandlers.ofByteArray());
    }

    /**
     * Sends, following 307/308 redirects. The bearer token is kept only when the redirect names the
     * leader ({@code Leader-Id}) and never from https to http (which is refused). The whole exchange,
     * body included, must finish within {@code timeout}.
     */
    <T> HttpResponse<T> sendFollowing(Call c, Duration timeout, HttpResponse.BodyHandler<T> handler)
            throws IOException, InterruptedException, java.util.concurrent.TimeoutException {
        URI uri = URI.create(base + c.pathAndQuery);
        boolean withToken = true;
        long end = System.nanoTime() + timeout.toNanos();
        for (int hop = 0; ; hop++) {
            long left = end - System.nanoTime();
            if (left <= 0) {
                throw new java.util.concurrent.TimeoutException();
            }
            HttpRequest req = requestBuilder(uri, c, withToken).timeout(Duration.ofNanos(left)).build();
            HttpResponse<T> resp = exchange(req, handler, end);
            int s = resp.statusCode();
            if (s != 307 && s != 308) {
                return resp;
            }
            String loc = resp.headers().firstValue("Location").orElse(null);
            if (loc == null) {
                return resp;
            }
            if (resp.body() instanceof AutoCloseable) {
                try {
                    ((AutoCloseable) resp.body()).close();
                } catch (Exception ignored) {
                    // the connection is dropped; nothing to do
                }
            }
            URI next = uri.resolve(loc);
            if (hop >= MAX_REDIRECTS) {
                throw redirectError(c, "more than " + MAX_REDIRECTS + " redirects (last to " + next + ")");
            }
            String refused = refuseRedirect(uri, next);
            if (refused != null) {
                throw redirectError(c, refused);
            }
            withToken = withToken && resp.headers().firstValue("Leader-Id").isPresent();
            uri = next;
        }
    }

    /** Why a redirect from {@code from} to {@code to} is not followed, or null when it is. */
    static String refuseRedirect(URI from, URI to) {
        if (!"http".equals(to.getScheme()) && !"https".equals(to.getScheme())) {
            return "refusing a redirect to " + to;
        }
        if ("https".equals(from.getScheme()) && !"https".equals(to.getScheme())) {
            return "refusing a redirect from https to http (" + to + ")";
        }
        return null;
    }

    private BadBatchException redirectError(Call c, String why) {
        BadBatchException.Details d = new BadBatchException.Details(ErrorKind.NOT_LEADER, "not_leader",
                c.method + " " + c.pathAndQuery + ": " + why, 307);
        return BadBatchException.create(d);
    }

    /**
     * One blocking exchange that must finish, body included, by {@code endNanos}.
     *
     * <p>It uses the blocking {@code send}: {@code sendAsync} hands every answer to the
     * CompletableFuture default pool, which on machines with fewer than 3 cores is a new thread
     * per task (several milliseconds a request on a busy 2-core machine). The request's own
     * timeout covers the connect and the answer's headers; a watchdog on the client's timer
     * interrupts the caller at the deadline, which cancels the exchange (JDK 16+), to cover the
     * body too.
     */
    private <T> HttpResponse<T> exchange(HttpRequest req, HttpResponse.BodyHandler<T> handler, long endNanos)
            throws IOException, InterruptedException, java.util.concurrent.TimeoutException {
        long left = endNanos - System.nanoTime();
        if (left <= 0) {
            throw new java.util.concurrent.TimeoutException();
        }
        Watchdog wd = new Watchdog(Thread.currentThread());
        ScheduledFuture<?> timer;
        try {
            timer = timers.schedule(wd, left, TimeUnit.NANOSECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            throw BadBatchException.of(ErrorKind.CONNECTION, "the client is closed", e);
        }
        try {
            HttpResponse<T> r = http.send(req, handler);
            if (wd.finish()) {
                Thread.interrupted(); // the watchdog fired just as the answer came: keep the answer
            }
            return r;
        } catch (InterruptedException e) {
            if (wd.finish()) {
                Thread.interrupted();
                throw new java.util.concurrent.TimeoutException();
            }
            throw e;
        } catch (IOException | RuntimeException e) {
            if (wd.finish()) {
                Thread.interrupted();
                throw new java.util.concurrent.TimeoutException();
            }
            throw e;
        } finally {
            timer.cancel(false);
        }
    }

    /** Interrupts a caller whose exchange passed its deadline, unless it finished first. */
    private static final class Watchdog implements Runnable {
        private final Thread caller;
        private boolean done;
        private boolean fired;

        Watchdog(Thread caller) {
            this.caller = caller;
        }

        @Override
        public synchronized void run() {
            if (!done) {
                fired = true;
                caller.interrupt();
            }
        }

        /** Marks the exchange finished; answers whether the watchdog had fired. */
        synchronized boolean finish() {
            done = true;
            return fired;
        }
    }

    /** The exception for a non-2xx answer. */
    static BadBatchException errorFrom(int status, java.net.http.HttpHeaders headers, byte[] body) {
        BadBatchException.Details d = Wire.decodeError(body, status);
        if (d == null) {
            ErrorKind k = ErrorKind.fromStatus(status);
            String text = body == null ? "" : new String(body, 0, Math.min(body.length, 200), StandardCharsets.UTF_8).trim();
            d = new BadBatchException.Details(k, k.code(), "HTTP " + status + (text.isEmpty() ? "" : ": " + text), status);
        }
        d.requestId = headers.firstValue("X-Request-Id").orElse(null);
        d.retryAfter = parseRetryAfter(headers.firstValue("Retry-After").orElse(null));
        d.producerEpoch = counter(headers.firstValue("Producer-Epoch").orElse(null));
        d.expectedSeq = counter(headers.firstValue("Producer-Expected-Seq").orElse(null));
        d.receivedSeq = counter(headers.firstValue("Producer-Received-Seq").orElse(null));
        return BadBatchException.create(d);
    }

    /** A Producer-* header's counter; -1 when absent or malformed. */
    private static long counter(String v) {
        if (v == null) {
            return -1;
        }
        try {
            long n = Long.parseLong(v.trim());
            return n < 0 ? -1 : n;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    static Duration parseRetryAfter(String v) {
        if (v == null || v.isBlank()) {
            return null;
        }
        v = v.trim();
        try {
            long s = Long.parseLong(v);
            return s < 0 ? null : Duration.ofSeconds(s);
        } catch (NumberFormatException e) {
            try {
                ZonedDateTime t = ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME);
                Duration d = Duration.between(ZonedDateTime.now(t.getZone()), t);
                return d.isNegative() ? Duration.ZERO : d;
            } catch (RuntimeException e2) {
                return null;
            }
        }
    }

    /** Used by tails: one GET of the SSE route. */
    Call tailCall(String path, Position from, long lastOffset) {
        Call c = new Call("GET", path + "?" + from.query(), null);
        c.accept = "text/event-stream";
        if (lastOffset >= 0) {
            c.lastEventId = Long.toString(lastOffset);
        }
        return c;
    }

    Duration requestTimeout() {
        return opts.requestTimeout();
    }
}
