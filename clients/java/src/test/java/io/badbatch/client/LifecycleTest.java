package io.badbatch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The stream lifecycle against a real {@code badbatch serve} (create, idempotent producers, forks,
 * close and the end of a tail, delete), and its requests against a scripted server. The real server
 * needs BADBATCH_BIN (ci.sh sets it).
 */
class LifecycleTest {
    private static Process server;
    private static Path dir;
    private static BadBatchClient c;

    @BeforeAll
    static void start() throws Exception {
        String bin = System.getenv("BADBATCH_BIN");
        if (bin == null || bin.isEmpty()) {
            return;
        }
        dir = Files.createTempDirectory("badbatch-java-lifecycle");
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        server = new ProcessBuilder(bin, "serve", "--data-dir", dir.resolve("data").toString(), "--addr",
                "127.0.0.1:" + port).redirectErrorStream(true).redirectOutput(dir.resolve("server.log").toFile()).start();
        String url = "http://127.0.0.1:" + port;
        HttpClient h = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            try {
                if (h.send(HttpRequest.newBuilder(URI.create(url + "/readyz")).build(),
                        HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
                    break;
                }
            } catch (IOException e) {
                // not yet listening
            }
            assertTrue(System.nanoTime() < deadline, "server not ready: " + Files.readString(dir.resolve("server.log")));
            Thread.sleep(50);
        }
        c = BadBatchClient.create(url);
    }

    @AfterAll
    static void stop() throws Exception {
        if (c != null) {
            c.close();
        }
        if (server != null) {
            server.destroy();
            if (!server.waitFor(10, TimeUnit.SECONDS)) {
                server.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
        if (dir != null) {
            ClusterTest.deleteTree(dir);
        }
    }

    private static void needServer() {
        org.junit.jupiter.api.Assumptions.assumeTrue(c != null, "BADBATCH_BIN not set");
    }

    private static List<String> values(List<StoredRecord> recs) {
        return recs.stream().map(StoredRecord::valueAsString).collect(Collectors.toList());
    }

    /** Every record of a tail, which must end by itself. */
    private static List<StoredRecord> tailAll(String stream, Position from) {
        try (Tail t = c.tail(stream, from)) {
            List<StoredRecord> out = new ArrayList<>();
            t.forEachRemaining(out::add);
            return out;
        }
    }

    @Test
    void createdExistsAndConflict() {
        needServer();
        StreamConfig cfg = StreamConfig.builder().contentType("text/plain").ttl(Duration.ofHours(1)).build();
        assertTrue(c.createStream("lc-create", cfg));
        assertFalse(c.createStream("lc-create", cfg), "the same configuration: nothing changed");
        StreamExistsException e = assertThrows(StreamExistsException.class, () -> c.createStream("lc-create", StreamConfig.DEFAULT));
        assertEquals(409, e.status());
        assertEquals(ErrorKind.STREAM_EXISTS, e.kind());
        StreamInfo info = c.streamInfo("lc-create");
        assertEquals(Optional.of("text/plain"), info.contentType());
        assertEquals(OptionalLong.of(3600), info.ttlSeconds());
        assertFalse(info.closed());
        assertEquals(Optional.empty(), info.forkedFrom());
        assertTrue(c.createStream("lc-create-plain", StreamConfig.DEFAULT));
        assertEquals(Optional.of("application/octet-stream"), c.streamInfo("lc-create-plain").contentType());
        assertThrows(InvalidOptionsException.class, () -> StreamConfig.builder().ttl(Duration.ofMillis(1500)).build());
    }

    @Test
    void producerReplayGapAndFence() {
        needServer();
        String s = "lc-producer";
        AppendResult first = c.append(s, Record.text("a"), AppendOptions.builder().producer(Producer.of("p", 0, 0)).build());
        AppendResult again = c.append(s, Record.text("a"), AppendOptions.builder().producer(Producer.of("p", 0, 0)).build());
        assertTrue(again.replayed());
        assertEquals(first.firstOffset(), again.firstOffset());
        ProducerSeqGapException gap = assertThrows(ProducerSeqGapException.class,
                () -> c.append(s, Record.text("x"), AppendOptions.builder().producer(Producer.of("p", 0, 5)).build()));
        assertEquals(409, gap.status());
        assertEquals(OptionalLong.of(1), gap.expectedSeq());
        assertEquals(OptionalLong.of(5), gap.receivedSeq());
        assertEquals(OptionalLong.of(0), gap.producerEpoch());
        c.append(s, Record.text("b"), AppendOptions.builder().producer(Producer.of("p", 2, 0)).build());
        ProducerFencedException fenced = assertThrows(ProducerFencedException.class,
                () -> c.append(s, Record.text("x"), AppendOptions.builder().producer(Producer.of("p", 1, 0)).build()));
        assertEquals(403, fenced.status());
        assertEquals(OptionalLong.of(2), fenced.producerEpoch());
        assertEquals(List.of("a", "b"), values(c.read(s, Position.earliest()).records()));
        assertThrows(InvalidOptionsException.class, () -> Producer.of("", 0, 0));
    }

    @Test
    void streamSeqMustIncrease() {
        needServer();
        String s = "lc-stream-seq";
        c.append(s, Record.text("1"), AppendOptions.builder().streamSeq("a").build());
        c.appendBatch(s, List.of(Record.text("2"), Record.text("3")), AppendOptions.builder().streamSeq("b").build());
        StreamSeqException e = assertThrows(StreamSeqException.class,
                () -> c.append(s, Record.text("x"), AppendOptions.builder().streamSeq("a").build()));
        assertEquals(409, e.status());
        assertEquals(ErrorKind.STREAM_SEQ, e.kind());
        assertEquals("stream_seq", e.code());
        assertThrows(StreamSeqException.class, // equal is not above
                () -> c.append(s, Record.text("x"), AppendOptions.builder().streamSeq("b").build()));
        assertEquals(List.of("1", "2", "3"), values(c.read(s, Position.earliest()).records()), "nothing stored");
        c.append(s, Record.text("4")); // no label: no condition
        assertEquals(Optional.empty(), AppendOptions.NONE.streamSeq());
        assertThrows(InvalidOptionsException.class, () -> AppendOptions.builder().streamSeq("").build());
    }

    @Test
    void forkReadsThrough() {
        needServer();
        c.appendBatch("lc-src", List.of(Record.text("s0"), Record.text("s1"), Record.text("s2")));
        c.forkStream("lc-fork", "lc-src", 2);
        c.append("lc-fork", Record.text("f2"));
        c.append("lc-src", Record.text("s3"));
        List<StoredRecord> recs = c.read("lc-fork", Position.earliest()).records();
        assertEquals(List.of("s0", "s1", "f2"), values(recs));
        assertEquals(List.of(0L, 1L, 2L), recs.stream().map(StoredRecord::offset).collect(Collectors.toList()));
        StreamInfo info = c.streamInfo("lc-fork");
        assertEquals(Optional.of("lc-src"), info.forkedFrom());
        assertEquals(OptionalLong.of(2), info.forkOffset());
        assertThrows(StreamExistsException.class, () -> c.forkStream("lc-fork", "lc-src", 1));
        assertThrows(NotFoundException.class, () -> c.forkStream("lc-fork-2", "lc-no-such-stream", 0));
    }

    @Test
    @Timeout(30)
    void closeRefusesAppendsAndEndsTails() throws Exception {
        needServer();
        String s = "lc-close";
        c.append(s, Record.text("one"));
        c.append(s, Record.text("last"), AppendOptions.builder().close(true).build());
        StreamClosedException e = assertThrows(StreamClosedException.class, () -> c.append(s, Record.text("more")));
        assertEquals(409, e.status());
        c.closeStream(s); // again: no error
        assertTrue(c.streamInfo(s).closed());
        assertEquals(List.of("one", "last"), values(tailAll(s, Position.earliest())));
        assertEquals(List.of(), tailAll(s, Position.latest()));

        c.append("lc-close-live", Record.text("x"));
        CompletableFuture<Void> closer = CompletableFuture.runAsync(() -> {
            try {
                Thread.sleep(300);
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
            }
            c.closeStream("lc-close-live");
        });
        assertEquals(List.of("x"), values(tailAll("lc-close-live", Position.earliest())), "a live tail ends at the close");
        closer.get(10, TimeUnit.SECONDS);
    }

    @Test
    void deleteSoftThenCascade() {
        needServer();
        c.append("lc-del", Record.text("a"));
        c.forkStream("lc-del-fork", "lc-del", 1);
        c.deleteStream("lc-del");
        GoneException gone = assertThrows(GoneException.class, () -> c.streamInfo("lc-del"));
        assertEquals(410, gone.status());
        assertEquals(List.of("a"), values(c.read("lc-del-fork", Position.earliest()).records()));
        c.deleteStream("lc-del-fork");
        assertThrows(NotFoundException.class, () -> c.streamInfo("lc-del"));
        assertThrows(NotFoundException.class, () -> c.deleteStream("lc-del"));
        assertTrue(c.createStream("lc-del", StreamConfig.DEFAULT));
        assertEquals(0, c.streamInfo("lc-del").nextOffset());
    }

    // ---------------------------------------------------------------- against a scripted server

    private static ClientOptions fast() {
        return ClientOptions.builder().retryBackoff(Duration.ofMillis(1)).maxBackoff(Duration.ofMillis(5))
                .generateIdempotencyKeys(false).build();
    }

    private static void error(HttpExchange ex, int status, String code) throws IOException {
        ex.getResponseHeaders().set("Producer-Epoch", "4");
        ex.getResponseHeaders().set("Producer-Expected-Seq", "8");
        ex.getResponseHeaders().set("Producer-Received-Seq", "9");
        FakeServer.error(ex, status, code);
    }

    @Test
    void requestsAndRetries() throws Exception {
        String info = "{\"stream\":\"s\",\"first_offset\":0,\"next_offset\":0,\"records\":0,\"bytes\":0}";
        try (FakeServer s = new FakeServer((ex, n) -> {
            switch (n) {
                case 1: case 4: error(ex, 503, "unavailable"); break; // a create, a close: retried
                case 2: FakeServer.json(ex, 201, info); break;
                case 3: FakeServer.json(ex, 201, info); break;
                case 5: FakeServer.json(ex, 200, info); break;
                case 6: error(ex, 503, "unavailable"); break; // a delete: not retried
                case 7: error(ex, 502, "bad_gateway"); break; // a producer's append: retried
                case 8: FakeServer.json(ex, 201, FakeServer.APPENDED); break;
                case 9: error(ex, 409, "stream_closed"); break;
                case 10: error(ex, 409, "stream_exists"); break;
                case 11: error(ex, 409, "producer_seq_gap"); break;
                case 12: error(ex, 403, "producer_fenced"); break;
                default: error(ex, 409, "stream_seq"); break;
            }
        })) {
            BadBatchClient fc = BadBatchClient.create(s.url(), fast());
            assertTrue(fc.createStream("s", StreamConfig.builder().contentType("a/b")
                    .expiresAt(Instant.parse("2030-01-02T03:04:05Z")).closed(true).build()));
            assertEquals(2, s.requests.size());
            assertEquals("PUT", s.requests.get(1).getRequestMethod());
            assertEquals("/v1/streams/s", s.requests.get(1).getRequestURI().getPath());
            assertEquals("{\"content_type\":\"a/b\",\"expires_at\":\"2030-01-02T03:04:05Z\",\"closed\":true}", s.bodies.get(1));
            fc.forkStream("f", "s", 3, StreamConfig.builder().ttl(Duration.ofMinutes(1)).build(), null);
            assertEquals("{\"fork\":{\"stream\":\"s\",\"offset\":3},\"ttl_seconds\":60}", s.bodies.get(2));
            fc.closeStream("s");
            assertEquals(5, s.requests.size());
            assertEquals("POST", s.requests.get(4).getRequestMethod());
            assertEquals("/v1/streams/s/close", s.requests.get(4).getRequestURI().getPath());
            assertThrows(UnavailableException.class, () -> fc.deleteStream("s"));
            assertEquals(6, s.requests.size(), "a delete is not retried after an unknown outcome");
            assertEquals("DELETE", s.requests.get(5).getRequestMethod());
            fc.append("s", Record.text("x"), AppendOptions.builder().producer(Producer.of("p", 1, 2)).close(true)
                    .streamSeq("s-7").build());
            assertEquals(8, s.requests.size(), "a producer's append is retried");
            assertEquals("p", s.header(7, "Producer-Id"));
            assertEquals("1", s.header(7, "Producer-Epoch"));
            assertEquals("2", s.header(7, "Producer-Seq"));
            assertEquals("true", s.header(7, "Stream-Closed"));
            assertEquals("s-7", s.header(6, "Stream-Seq"), "on every attempt");
            assertEquals("s-7", s.header(7, "Stream-Seq"));
            assertNull(s.header(7, "Idempotency-Key"));

            AppendOptions p = AppendOptions.builder().producer(Producer.of("p", 4, 9)).build();
            assertEquals(409, assertThrows(StreamClosedException.class, () -> fc.append("s", Record.text("x"), p)).status());
            assertEquals(409, assertThrows(StreamExistsException.class, () -> fc.append("s", Record.text("x"), p)).status());
            ProducerSeqGapException gap = assertThrows(ProducerSeqGapException.class, () -> fc.append("s", Record.text("x"), p));
            assertEquals(OptionalLong.of(8), gap.expectedSeq());
            assertEquals(OptionalLong.of(9), gap.receivedSeq());
            assertEquals(OptionalLong.of(4), gap.producerEpoch());
            ProducerFencedException fenced = assertThrows(ProducerFencedException.class, () -> fc.append("s", Record.text("x"), p));
            assertEquals(403, fenced.status());
            assertEquals(OptionalLong.of(4), fenced.producerEpoch());
            assertEquals(409, assertThrows(StreamSeqException.class, () -> fc.append("s", Record.text("x"), p)).status());
            assertEquals(13, s.requests.size(), "the lifecycle kinds are not retried");
        }
    }

    @Test
    @Timeout(10)
    void aTailEndsAtTheClosedEvent() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            OutputStream o = TailTest.sse(ex);
            TailTest.send(o, TailTest.event(0) + TailTest.event(1) + "event: closed\ndata: {}\n\n");
            Thread.sleep(5000); // the connection stays open: only the event ends the tail
        })) {
            BadBatchClient fc = BadBatchClient.create(s.url(), fast());
            try (Tail t = fc.tail("s", Position.earliest())) {
                List<Long> got = t.stream().map(StoredRecord::offset).collect(Collectors.toList());
                assertEquals(List.of(0L, 1L), got);
            }
            assertEquals(1, s.requests.size());
        }
    }
}
