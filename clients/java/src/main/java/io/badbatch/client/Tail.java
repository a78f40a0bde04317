package io.badbatch.client;

import io.badbatch.client.json.Json;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A live tail of one stream, from {@link BadBatchClient#tail(String, Position)}: every record once,
 * in offset order.
 *
 * <p>It rides on Server-Sent Events. A background thread reads the connection into a bounded
 * buffer; after any failure (a broken or idle connection, a server restart, {@code 429}/{@code 5xx})
 * it reconnects with backoff and {@code Last-Event-ID} and resumes after the last record it
 * received, so there is no gap and no duplicate. It ends when closed, when the stream is closed
 * (after its last record {@link #hasNext()} answers false), or on an error a retry cannot fix ({@code not_found}, {@code gone}, {@code forbidden}, {@code unauthorized}, ...), which
 * {@link #hasNext()}, {@link #next()} and {@link #poll(Duration)} throw.
 *
 * <p>Use it as an {@link Iterator} ({@code hasNext()} blocks until a record arrives), with
 * {@link #poll(Duration)} for a bounded wait, or as a {@link #stream()}. One consumer thread at a
 * time; {@link #close()} may be called from any thread and ends a blocked {@code hasNext()} (it then
 * answers false).
 */
public final class Tail implements Iterator<StoredRecord>, AutoCloseable {
    private static final Object END = new Object();
    private static final int BUFFER = 64; // batches (one per read from the connection)

    private final BadBatchClient client;
    private final String stream;
    private final String path;
    private final Position from;
    private final BlockingQueue<Object> queue = new ArrayBlockingQueue<>(BUFFER);
    private final Thread reader;
    private final Object lock = new Object();

    private volatile boolean closed;
    private long lastOffset = -1; // the reader thread's: the last record queued
    private StoredRecord peeked; // the consumer's
    private List<StoredRecord> batch = List.of(); // the consumer's: the batch being handed out
    private int batchPos;
    private List<StoredRecord> pending = new ArrayList<>(); // the reader's: parsed, not yet queued
    private BadBatchException terminal; // the consumer's: the error the tail ended with
    private boolean ended; // the consumer's: END was taken

    // The open connection, for the idle watchdog and close().
    private InputStream body;
    private volatile long lastActivity;
    private volatile boolean idleAbort;
    private volatile boolean waitingOnConsumer;

    Tail(BadBatchClient client, String stream, String path, Position from) {
        this.client = client;
        this.stream = stream;
        this.path = path;
        this.from = from;
        // The first connection is made by the caller's thread, so that a permanent error is
        // thrown by tail() itself.
        InputStream first = firstConnect();
        this.reader = new Thread(() -> run(first), "badbatch-tail-" + stream);
        this.reader.setDaemon(true);
        this.reader.start();
    }

    /** The stream this tail follows. */
    public String streamName() {
        return stream;
    }

    private InputStream firstConnect() {
        int attempt = 0;
        while (true) {
            try {
                return connect();
            } catch (BadBatchException e) {
                if (!retryable(e) || attempt >= client.options().maxRetries()) {
                    throw e;
                }
                long d = client.retryDelayNanos(e, attempt);
                if (d < 0) {
                    throw e;
                }
                sleepOrThrow(d, e);
                attempt++;
            }
        }
    }

    private static void sleepOrThrow(long nanos, BadBatchException e) {
        try {
            TimeUnit.NANOSECONDS.sleep(nanos);
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            throw e;
        }
    }

    /** Opens one SSE connection; answers its body, positioned at the first event. */
    private InputStream connect() {
        BadBatchClient.Call c = client.tailCall(path, from, lastOffset);
        HttpResponse<InputStream> resp;
        try {
            resp = client.sendFollowing(c, client.requestTimeout(), HttpResponse.BodyHandlers.ofInputStream());
        } catch (BadBatchException e) {
            throw e;
        } catch (java.net.http.HttpConnectTimeoutException | java.net.ConnectException e) {
            throw BadBatchException.of(ErrorKind.CONNECTION, "tail " + stream + ": " + e, e);
        } catch (java.net.http.HttpTimeoutException | java.util.concurrent.TimeoutException e) {
            throw BadBatchException.of(ErrorKind.TIMEOUT, "tail " + stream + ": no answer within " + client.requestTimeout(), e);
        } catch (IOException e) {
            throw BadBatchException.of(ErrorKind.CONNECTION, "tail " + stream + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw BadBatchException.of(ErrorKind.CONNECTION, "tail " + stream + ": interrupted", e);
        }
        if (resp.statusCode() != 200) {
            byte[] b;
            try (InputStream in = resp.body()) {
                b = in.readNBytes(64 << 10);
            } catch (IOException e) {
                b = new byte[0];
            }
            throw BadBatchClient.errorFrom(resp.statusCode(), resp.headers(), b);
        }
        return resp.body();
    }

    /** Whether the tail retries after this error (everything but the permanent kinds). */
    private static boolean retryable(BadBatchException e) {
        switch (e.kind()) {
            case RATE_LIMITED: case UNAVAILABLE: case NO_LEADER: case CONNECTION: case TIMEOUT: case INTERNAL:
                return true;
            default:
                return false;
        }
    }

    // ---------------------------------------------------------------- the reader thread

    private void run(InputStream first) {
        InputStream in = first;
        int failures = 0;
        try {
            while (!closed) {
                BadBatchException err;
                long before = lastOffset;
                try {
                    if (in == null) {
                        in = connect();
                    }
                    readEvents(in);
                    if (streamClosed) {
                        closeBody();
                        endOfStream();
                        return;
                    }
                    err = BadBatchException.of(ErrorKind.CONNECTION, "tail " + stream + ": the server ended the stream");
                } catch (BadBatchException e) {
                    err = e;
                } catch (IOException e) {
                    err = BadBatchException.of(ErrorKind.CONNECTION, "tail " + stream + ": " + e, e);
                } catch (InterruptedException e) {
                    err = BadBatchException.of(ErrorKind.CONNECTION, "tail " + stream + ": interrupted", e);
                } finally {
                    closeBody();
                    in = null;
                }
                if (closed) {
                    return;
                }
                Thread.interrupted(); // an idle abort's interrupt is spent
                if (idleAbort) {
                    idleAbort = false;
                    err = BadBatchException.of(ErrorKind.TIMEOUT,
                            "tail " + stream + ": idle for " + client.options().tailIdleTimeout() + ", reconnecting");
                }
                if (!retryable(err)) {
                    finish(err);
                    return;
                }
                if (lastOffset != before) {
                    failures = 0;
                }
                long d = client.retryDelayNanos(err, failures);
                if (d < 0) {
                    d = client.options().maxRetryAfter().toNanos();
                }
                failures++;
                try {
                    TimeUnit.NANOSECONDS.sleep(d);
                } catch (InterruptedException e) {
                    if (closed) {
                        return;
                    }
                    Thread.interrupted();
                }
            }
        } catch (RuntimeException | Error e) {
            if (!closed) {
                finish(e instanceof BadBatchException ? (BadBatchException) e
                        : BadBatchException.of(ErrorKind.INTERNAL, "tail " + stream + ": " + e, e));
            }
        } finally {
            if (closed) {
                queue.clear();
                queue.offer(END);
            }
        }
    }

    /** The stream is closed and every record was received: the consumer sees the end. */
    private void endOfStream() {
        try {
            flush();
            queue.put(END);
        } catch (InterruptedException e) {
            // closed meanwhile
        }
    }

    private void finish(BadBatchException err) {
        try {
            flush(); // records received before the error come first
            queue.put(err);
        } catch (InterruptedException e) {
            // closed meanwhile
        }
    }

    private void closeBody() {
        InputStream b;
        synchronized (lock) {
            b = body;
            body = null;
        }
        if (b != null) {
            try {
                b.close();
            } catch (IOException ignored) {
                // dropping it
            }
        }
    }

    /** Reads SSE events until the connection ends; queues records. */
    private void readEvents(InputStream in) throws IOException, InterruptedException {
        synchronized (lock) {
            body = in;
        }
        lastActivity = System.nanoTime();
        long idleNanos = client.options().tailIdleTimeout().toNanos();
        long period = Math.max(idleNanos / 4, TimeUnit.MILLISECONDS.toNanos(10));
        ScheduledFuture<?> watchdog = client.timers.scheduleAtFixedRate(() -> {
            if (!waitingOnConsumer && System.nanoTime() - lastActivity > idleNanos) {
                synchronized (lock) {
                    if (body == in && !idleAbort) {
                        idleAbort = true;
                        reader.interrupt();
                        try {
                            in.close();
                        } catch (IOException ignored) {
                            // dropping it
                        }
                    }
                }
            }
        }, period, period, TimeUnit.NANOSECONDS);
        try {
            readLoop(in);
        } finally {
            watchdog.cancel(false);
        }
    }

    private byte[] buf = new byte[64 << 10];
    private byte[] data = new byte[1024];
    private int dataLen;
    private boolean hasData;
    private boolean errorEvent;
    private boolean closedEvent;
    private boolean streamClosed; // the server sent "event: closed": no record will follow

    private void readLoop(InputStream in) throws IOException, InterruptedException {
        int start = 0;
        int end = 0;
        dataLen = 0;
        hasData = false;
        errorEvent = false;
        closedEvent = false;
        while (true) {
            // Complete lines in buf[start:end].
            int nl;
            while (!streamClosed && (nl = indexOf(buf, start, end, (byte) '\n')) >= 0) {
                int lineEnd = nl > start && buf[nl - 1] == '\r' ? nl - 1 : nl;
                line(buf, start, lineEnd);
                start = nl + 1;
            }
            flush();
            if (streamClosed) {
                return;
            }
            if (start > 0) {
                System.arraycopy(buf, start, buf, 0, end - start);
                end -= start;
                start = 0;
            }
            if (end == buf.length) {
                buf = Arrays.copyOf(buf, buf.length * 2);
            }
            int n = in.read(buf, end, buf.length - end);
            if (n < 0) {
                return;
            }
            if (closed) {
                return;
            }
            lastActivity = System.nanoTime();
            end += n;
        }
    }

    private static int indexOf(byte[] b, int from, int to, byte c) {
        for (int i = from; i < to; i++) {
            if (b[i] == c) {
                return i;
            }
        }
        return -1;
    }

    private static boolean startsWith(byte[] b, int off, int end, String field) {
        int n = field.length();
        if (end - off < n) {
            return false;
        }
        for (int i = 0; i < n; i++) {
            if (b[off + i] != field.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    /** One SSE line (without its line ending). */
    private void line(byte[] b, int off, int end) throws InterruptedException {
        if (off == end) {
            dispatch();
            return;
        }
        if (b[off] == ':') {
            return; // a comment (keep-alive)
        }
        if (startsWith(b, off, end, "data")) {
            int v = off + 4;
            if (v < end && b[v] != ':') {
                return; // another field
            }
            v = v < end ? v + 1 : v;
            if (v < end && b[v] == ' ') {
                v++;
            }
            int len = end - v;
            int need = dataLen + (hasData ? 1 : 0) + len;
            if (need > data.length) {
                data = Arrays.copyOf(data, Math.max(need, data.length * 2));
            }
            if (hasData) {
                data[dataLen++] = '\n';
            }
            System.arraycopy(b, v, data, dataLen, len);
            dataLen += len;
            hasData = true;
        } else if (startsWith(b, off, end, "event:")) {
            int v = off + 6;
            if (v < end && b[v] == ' ') {
                v++;
            }
            String type = new String(b, v, end - v, StandardCharsets.UTF_8);
            errorEvent = type.equals("error");
            closedEvent = type.equals("closed");
        }
        // id: is the record's offset, which its data carries too.
    }

    private void dispatch() throws InterruptedException {
        if (!hasData) {
            errorEvent = false;
            closedEvent = false;
            return;
        }
        boolean isError = errorEvent;
        boolean isClosed = closedEvent;
        hasData = false;
        errorEvent = false;
        closedEvent = false;
        int len = dataLen;
        dataLen = 0;
        if (isClosed) {
            streamClosed = true; // the stream is closed: every record was sent
            return;
        }
        if (isError) {
            flush();
            BadBatchException.Details d = Wire.decodeError(Arrays.copyOf(data, len), 0);
            if (d == null) {
                d = new BadBatchException.Details(ErrorKind.INTERNAL, "internal",
                        new String(data, 0, len, StandardCharsets.UTF_8), 0);
            }
            d.status = d.kind.defaultStatus();
            throw BadBatchException.create(d);
        }
        StoredRecord rec;
        try {
            rec = Wire.decodeRecord(new Json.Reader(data, 0, len), stream);
        } catch (RuntimeException e) {
            throw BadBatchException.of(ErrorKind.INTERNAL, "tail " + stream + ": bad SSE record: " + e.getMessage(), e);
        }
        if (rec.offset() <= lastOffset) {
            return; // a duplicate after a reconnect
        }
        lastOffset = rec.offset();
        pending.add(rec);
    }

    /** Hands the records parsed so far to the consumer, one queue item per read. */
    private void flush() throws InterruptedException {
        if (pending.isEmpty()) {
            return;
        }
        List<StoredRecord> b = pending;
        pending = new ArrayList<>(Math.max(16, b.size()));
        if (!queue.offer(b)) {
            // The consumer is behind: wait for it, which is not idleness of the connection.
            waitingOnConsumer = true;
            try {
                queue.put(b);
            } finally {
                waitingOnConsumer = false;
                lastActivity = System.nanoTime();
            }
        }
    }

    // ---------------------------------------------------------------- the consumer

    /**
     * Whether a record is available, waiting for one. Answers false once the tail is closed.
     *
     * @throws BadBatchException the error the tail ended with
     */
    @Override
    public boolean hasNext() {
        if (peeked != null) {
            return true;
        }
        try {
            return take(-1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw BadBatchException.of(ErrorKind.CONNECTION, "tail " + stream + ": interrupted", e);
        }
    }

    /** The next record, waiting for it. */
    @Override
    public StoredRecord next() {
        if (!hasNext()) {
            throw new NoSuchElementException("tail " + stream + " is closed");
        }
        StoredRecord r = peeked;
        peeked = null;
        return r;
    }

    /**
     * The next record, waiting at most {@code timeout}; null when none arrived in time or the tail
     * is closed.
     *
     * @throws BadBatchException the error the tail ended with
     * @throws InterruptedException when the waiting thread is interrupted
     */
    public StoredRecord poll(Duration timeout) throws InterruptedException {
        if (peeked == null && !take(Math.max(0, timeout.toNanos()))) {
            return null;
        }
        StoredRecord r = peeked;
        peeked = null;
        return r;
    }

    /** Takes one item into {@code peeked}; waits forever when {@code nanos < 0}. */
    private boolean take(long nanos) throws InterruptedException {
        if (batchPos < batch.size()) {
            peeked = batch.get(batchPos++);
            return true;
        }
        if (terminal != null) {
            throw terminal;
        }
        if (ended || closed) {
            ended = true;
            return false;
        }
        Object o = nanos < 0 ? queue.take() : queue.poll(nanos, TimeUnit.NANOSECONDS);
        if (o == null) {
            return false;
        }
        if (o == END || closed) {
            ended = true;
            return false;
        }
        if (o instanceof BadBatchException) {
            terminal = (BadBatchException) o;
            throw terminal;
        }
        @SuppressWarnings("unchecked")
        List<StoredRecord> b = (List<StoredRecord>) o;
        batch = b;
        batchPos = 1;
        peeked = b.get(0);
        return true;
    }

    /** This tail as a sequential, ordered {@link Stream}; closing the stream closes the tail. */
    public Stream<StoredRecord> stream() {
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(this, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(this::close);
    }

    /** Whether {@link #close()} was called. */
    public boolean isClosed() {
        return closed;
    }

    /** Stops the tail: drops the connection and ends the reader thread. Idempotent, any thread. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        reader.interrupt();
        closeBody();
        queue.clear();
        queue.offer(END);
    }
}
