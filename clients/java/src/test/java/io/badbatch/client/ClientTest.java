package io.badbatch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The client against a scripted server: retries, keys, errors, redirects, timeouts, encoding. */
class ClientTest {
    private static ClientOptions fast() {
        return ClientOptions.builder().retryBackoff(Duration.ofMillis(1)).maxBackoff(Duration.ofMillis(5)).build();
    }

    @Test
    void appendRetriesUnavailableUnderOneGeneratedKey() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            if (n < 3) {
                FakeServer.error(ex, 503, "unavailable");
            } else {
                FakeServer.json(ex, 201, FakeServer.APPENDED);
            }
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            AppendResult r = c.append("s", Record.text("x"));
            assertEquals("fsynced", r.durability());
            assertEquals(3, s.requests.size());
            String key = s.header(0, "Idempotency-Key");
            assertNotNull(key);
            assertTrue(key.matches("[0-9a-f]{32}"), key);
            assertEquals(key, s.header(1, "Idempotency-Key"));
            assertEquals(key, s.header(2, "Idempotency-Key"));
            assertEquals("application/json", s.header(0, "Content-Type"));
            assertEquals("{\"records\":[{\"value_base64\":\"eA==\"}]}", s.bodies.get(0));
        }
    }

    @Test
    void callerKeyAndExpectedOffsetAreSent() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> FakeServer.json(ex, 201, FakeServer.APPENDED))) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            c.appendBatch("s", List.of(Record.json("{\"a\": 1}").withKey("k").withHeader("h", "v")
                    .withTimestamp(Instant.parse("2026-01-02T03:04:05Z")), Record.empty()),
                    AppendOptions.builder().idempotencyKey("mine").expectedLastOffset(-1).build());
            assertEquals("mine", s.header(0, "Idempotency-Key"));
            assertEquals("-1", s.header(0, "Expected-Last-Offset"));
            assertEquals("{\"records\":[{\"key\":\"k\",\"value\":{\"a\": 1},\"headers\":{\"h\":\"v\"},"
                    + "\"timestamp\":\"2026-01-02T03:04:05Z\"},{}]}", s.bodies.get(0));
        }
    }

    @Test
    void noKeyMeansNoRetryOnceTheRequestMayHaveArrived() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> FakeServer.error(ex, 502, "internal"))) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast().toBuilder().generateIdempotencyKeys(false).build());
            BadBatchException e = assertThrows(BadBatchException.class, () -> c.append("s", Record.text("x")));
            assertEquals(1, s.requests.size());
            assertNull(s.header(0, "Idempotency-Key"));
            assertEquals(502, e.status());
        }
        // 503 unavailable: the outcome is unknown (a journal that failed
        // mid-write), so it is not retried without a key.
        try (FakeServer s = new FakeServer((ex, n) -> FakeServer.error(ex, 503, "unavailable"))) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast().toBuilder().generateIdempotencyKeys(false).build());
            assertThrows(UnavailableException.class, () -> c.append("s", Record.text("x")));
            assertEquals(1, s.requests.size());
        }
        // 503 no_leader stores nothing: retried even without a key.
        try (FakeServer s = new FakeServer((ex, n) -> {
            if (n == 1) {
                FakeServer.error(ex, 503, "no_leader");
            } else {
                FakeServer.json(ex, 201, FakeServer.APPENDED);
            }
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast().toBuilder().generateIdempotencyKeys(false).build());
            c.append("s", Record.text("x"));
            assertEquals(2, s.requests.size());
        }
    }

    @Test
    void connectionRefusedIsRetriedThenConnectionException() throws Exception {
        int port;
        try (java.net.ServerSocket ss = new java.net.ServerSocket(0)) {
            port = ss.getLocalPort();
        }
        BadBatchClient c = BadBatchClient.create("http://127.0.0.1:" + port,
                fast().toBuilder().generateIdempotencyKeys(false).maxRetries(2).build());
        ConnectionException e = assertThrows(ConnectionException.class, () -> c.append("s", Record.text("x")));
        assertEquals(ErrorKind.CONNECTION, e.kind());
        assertEquals(0, e.status());
    }

    @Test
    void retryAfterIsHonouredAndCapped() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            if (n == 1) {
                ex.getResponseHeaders().set("Retry-After", "1");
                FakeServer.error(ex, 429, "rate_limited");
            } else {
                FakeServer.json(ex, 200, "{\"records\":[],\"next_offset\":0}");
            }
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            long t0 = System.nanoTime();
            c.read("s", Position.earliest());
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms >= 950, "waited " + ms + " ms");
        }
        try (FakeServer s = new FakeServer((ex, n) -> {
            ex.getResponseHeaders().set("Retry-After", "100");
            FakeServer.error(ex, 429, "rate_limited");
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            RateLimitedException e = assertThrows(RateLimitedException.class, () -> c.read("s", Position.earliest()));
            assertEquals(1, s.requests.size());
            assertEquals(Duration.ofSeconds(100), e.retryAfter().orElseThrow());
            assertEquals(429, e.status());
            assertEquals("rate_limited", e.code());
        }
    }

    @Test
    void noLeaderIsRetried() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            if (n == 1) {
                ex.getResponseHeaders().set("Retry-After", "0");
                FakeServer.error(ex, 503, "no_leader");
            } else {
                FakeServer.json(ex, 201, FakeServer.APPENDED);
            }
        })) {
            BadBatchClient.create(s.url(), fast()).append("s", Record.text("x"));
            assertEquals(2, s.requests.size());
        }
    }

    @Test
    void everyErrorCodeMapsToItsException() throws Exception {
        Map<String, Class<? extends BadBatchException>> want = Map.ofEntries(
                Map.entry("bad_request", BadRequestException.class), Map.entry("invalid_stream", InvalidStreamException.class),
                Map.entry("unauthorized", UnauthorizedException.class), Map.entry("forbidden", ForbiddenException.class),
                Map.entry("not_found", NotFoundException.class), Map.entry("method_not_allowed", MethodNotAllowedException.class),
                Map.entry("membership_conflict", MembershipConflictException.class), Map.entry("gone", GoneException.class),
                Map.entry("too_large", TooLargeException.class), Map.entry("unsupported_type", UnsupportedTypeException.class),
                Map.entry("not_cluster", NotClusterException.class));
        for (Map.Entry<String, Class<? extends BadBatchException>> e : want.entrySet()) {
            ErrorKind k = ErrorKind.fromCode(e.getKey());
            try (FakeServer s = new FakeServer((ex, n) -> FakeServer.error(ex, k.defaultStatus(), e.getKey()))) {
                BadBatchException got = assertThrows(BadBatchException.class,
                        () -> BadBatchClient.create(s.url(), fast()).streamInfo("s"));
                assertEquals(e.getValue(), got.getClass(), e.getKey());
                assertEquals(k, got.kind());
                assertEquals(e.getKey(), got.code());
                assertEquals(k.defaultStatus(), got.status());
                assertEquals("scripted " + e.getKey(), got.serverMessage());
                assertEquals(1, s.requests.size(), "not retried: " + e.getKey());
            }
        }
    }

    @Test
    void offsetMismatchCarriesTheCurrentLastOffset() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> FakeServer.json(ex, 409,
                "{\"error\":{\"code\":\"offset_mismatch\",\"message\":\"m\",\"current_last_offset\":41}}"))) {
            OffsetMismatchException e = assertThrows(OffsetMismatchException.class, () -> BadBatchClient
                    .create(s.url(), fast()).append("s", Record.text("x"), AppendOptions.expectingLastOffset(3)));
            assertEquals(41, e.currentLastOffset().getAsLong());
            assertEquals(409, e.status());
            assertEquals(1, s.requests.size());
        }
    }

    @Test
    void internalIsRetriedForReadsOnlyAndUndecodableIsInternal() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            ex.sendResponseHeaders(500, -1);
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast().toBuilder().maxRetries(2).build());
            InternalException e = assertThrows(InternalException.class, () -> c.read("s", Position.offset(3), 10));
            assertEquals(3, s.requests.size());
            assertEquals(500, e.status());
            assertThrows(InternalException.class, () -> c.append("s", Record.text("x")));
            assertEquals(4, s.requests.size());
        }
        try (FakeServer s = new FakeServer((ex, n) -> FakeServer.json(ex, 200, "{\"records\":[{\"offset\":"))) {
            assertThrows(InternalException.class, () -> BadBatchClient.create(s.url(), fast()).read("s", Position.earliest()));
        }
    }

    @Test
    void redirectKeepsTheTokenOnlyWithLeaderId() throws Exception {
        try (FakeServer leader = new FakeServer((ex, n) -> FakeServer.json(ex, 201, FakeServer.APPENDED))) {
            for (boolean named : new boolean[] {true, false}) {
                try (FakeServer follower = new FakeServer((ex, n) -> {
                    ex.getResponseHeaders().set("Location", leader.url() + ex.getRequestURI());
                    if (named) {
                        ex.getResponseHeaders().set("Leader-Id", "2");
                    }
                    FakeServer.error(ex, 307, "not_leader");
                })) {
                    int before = leader.requests.size();
                    BadBatchClient c = BadBatchClient.create(follower.url(), fast().toBuilder().token("tok-0123456789abcdef").build());
                    c.append("orders", Record.text("x"), AppendOptions.expectingLastOffset(5));
                    assertEquals("Bearer tok-0123456789abcdef", follower.header(0, "Authorization"));
                    assertEquals(named ? "Bearer tok-0123456789abcdef" : null, leader.header(before, "Authorization"));
                    assertEquals("/v1/streams/orders/records", leader.requests.get(before).getRequestURI().getPath());
                    assertEquals("5", leader.header(before, "Expected-Last-Offset"));
                    assertEquals(follower.header(0, "Idempotency-Key"), leader.header(before, "Idempotency-Key"));
                    assertEquals(follower.bodies.get(0), leader.bodies.get(before));
                }
            }
        }
    }

    @Test
    void redirectFromHttpsToHttpIsRefused() {
        java.net.URI https = java.net.URI.create("https://a:1/v1/streams/s/records");
        assertNotNull(BadBatchClient.refuseRedirect(https, java.net.URI.create("http://b:1/v1/streams/s/records")));
        assertNotNull(BadBatchClient.refuseRedirect(https, java.net.URI.create("ftp://b/x")));
        assertNull(BadBatchClient.refuseRedirect(https, java.net.URI.create("https://b:1/v1/streams/s/records")));
        assertNull(BadBatchClient.refuseRedirect(java.net.URI.create("http://a:1/"), java.net.URI.create("https://b:1/")));
    }

    @Test
    void aRedirectLoopStopsAtTheHopLimit() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            ex.getResponseHeaders().set("Location", "/v1/streams/s/records");
            ex.getResponseHeaders().set("Leader-Id", "1");
            FakeServer.error(ex, 307, "not_leader");
        })) {
            NotLeaderException e = assertThrows(NotLeaderException.class,
                    () -> BadBatchClient.create(s.url(), fast()).append("s", Record.text("x")));
            assertTrue(e.getMessage().contains("redirects"), e.getMessage());
        }
    }

    @Test
    void timeoutsApplyPerAttemptAndPerCall() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            Thread.sleep(3000);
            FakeServer.json(ex, 200, "{\"records\":[],\"next_offset\":0}");
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast().toBuilder().requestTimeout(Duration.ofMillis(200)).maxRetries(1).build());
            long t0 = System.nanoTime();
            TimeoutException e = assertThrows(TimeoutException.class, () -> c.read("s", Position.earliest()));
            assertEquals(ErrorKind.TIMEOUT, e.kind());
            assertTrue(System.nanoTime() - t0 < 2_000_000_000L);
            assertEquals(2, s.requests.size());

            BadBatchClient d = BadBatchClient.create(s.url(), fast());
            t0 = System.nanoTime();
            assertThrows(TimeoutException.class, () -> d.read("s", Position.earliest(), 10, Duration.ofMillis(300)));
            assertTrue(System.nanoTime() - t0 < 2_000_000_000L);
        }
    }

    @Test
    void finishedCallsLeaveNoDeadlineQueued() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> FakeServer.json(ex, 200, "{\"records\":[],\"next_offset\":0}"))) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            for (int i = 0; i < 50; i++) {
                c.read("s", Position.earliest());
            }
            assertEquals(0, ((java.util.concurrent.ScheduledThreadPoolExecutor) c.timers).getQueue().size());
        }
    }

    @Test
    void aStalledBodyTimesOut() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            ex.getResponseHeaders().set("Content-Type", "application/json");
            ex.sendResponseHeaders(200, 1000);
            ex.getResponseBody().write("{\"records\":[".getBytes(java.nio.charset.StandardCharsets.UTF_8));
            ex.getResponseBody().flush();
            Thread.sleep(3000);
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast().toBuilder().requestTimeout(Duration.ofMillis(300)).maxRetries(0).build());
            long t0 = System.nanoTime();
            assertThrows(TimeoutException.class, () -> c.read("s", Position.earliest()));
            assertTrue(System.nanoTime() - t0 < 2_000_000_000L);
            assertFalse(Thread.currentThread().isInterrupted(), "the watchdog's interrupt does not leak");
        }
    }

    @Test
    void readsDecodePagesAndSendPositions() throws Exception {
        String page = "{\"records\":[{\"offset\":7,\"seq\":70,\"timestamp\":\"2026-01-02T03:04:05.123456789Z\",\"key\":\"k\\u00e9\","
                + "\"headers\":{\"h\":\"v\"},\"value\":{\"a\":[1,2,{\"b\":null}]}},{\"offset\":8,\"seq\":71,\"timestamp\":"
                + "\"2026-01-02T03:04:06Z\",\"value_base64\":\"AAEC/w==\"},{\"offset\":9,\"seq\":72,\"timestamp\":\"2026-01-02T03:04:06Z\"}],"
                + "\"next_offset\":10}";
        try (FakeServer s = new FakeServer((ex, n) -> FakeServer.json(ex, 200, page))) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            Page p = c.read("s.1_x-y", Position.time(Instant.parse("2026-01-02T03:04:05Z")), 3);
            assertEquals("/v1/streams/s.1_x-y/records", s.requests.get(0).getRequestURI().getPath());
            assertEquals("from_time=2026-01-02T03:04:05Z&limit=3", s.requests.get(0).getRequestURI().getQuery());
            assertEquals(10, p.nextOffset());
            StoredRecord r = p.records().get(0);
            assertEquals("s.1_x-y", r.stream());
            assertEquals(7, r.offset());
            assertEquals(70, r.seq());
            assertEquals(Instant.parse("2026-01-02T03:04:05.123456789Z"), r.timestamp());
            assertEquals("ké", r.key());
            assertEquals(Map.of("h", "v"), r.headers());
            assertTrue(r.isJson());
            assertEquals("{\"a\":[1,2,{\"b\":null}]}", r.valueAsString());
            assertFalse(p.records().get(1).isJson());
            assertEquals(List.of(0, 1, 2, 255), toList(p.records().get(1).value()));
            assertEquals(0, p.records().get(2).valueLength());
            assertNull(p.records().get(2).key());

            c.read("s", Position.latest());
            assertEquals("from=latest", s.requests.get(1).getRequestURI().getQuery());
            c.read("s", Position.offset(12), 0);
            assertEquals("from=12", s.requests.get(2).getRequestURI().getQuery());
        }
    }

    private static List<Integer> toList(byte[] b) {
        Integer[] out = new Integer[b.length];
        for (int i = 0; i < b.length; i++) {
            out[i] = b[i] & 0xff;
        }
        return List.of(out);
    }

    @Test
    void streamsCursorsAndGlobal() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            String path = ex.getRequestURI().getPath();
            if (path.equals("/v1/streams")) {
                FakeServer.json(ex, 200, "{\"streams\":[{\"stream\":\"a\",\"first_offset\":0,\"next_offset\":2,\"records\":2,"
                        + "\"bytes\":10,\"last_timestamp\":\"2026-01-02T03:04:05Z\"},{\"stream\":\"b\",\"first_offset\":0,"
                        + "\"next_offset\":0,\"records\":0,\"bytes\":0,\"last_timestamp\":null}]}");
            } else if (path.startsWith("/v1/streams/a/cursors/")) {
                FakeServer.json(ex, 200, "{\"stream\":\"a\",\"name\":\"c\",\"offset\":5}");
            } else if (path.equals("/v1/records")) {
                FakeServer.json(ex, 200, "{\"records\":[{\"stream\":\"a\",\"offset\":0,\"seq\":3,\"timestamp\":\"2026-01-02T03:04:05Z\"}],\"next_seq\":4}");
            } else {
                FakeServer.error(ex, 404, "not_found");
            }
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            List<StreamInfo> l = c.streams();
            assertEquals(2, l.size());
            assertEquals(Instant.parse("2026-01-02T03:04:05Z"), l.get(0).lastTimestamp().orElseThrow());
            assertTrue(l.get(1).lastTimestamp().isEmpty());
            c.setCursor("a", "c", 5);
            assertEquals("PUT", s.requests.get(1).getRequestMethod());
            assertEquals("{\"offset\":5}", s.bodies.get(1));
            assertEquals(5, c.cursor("a", "c"));
            GlobalPage g = c.readGlobal(3, 1);
            assertEquals("from_seq=3&limit=1", s.requests.get(3).getRequestURI().getQuery());
            assertEquals(4, g.nextSeq());
            assertEquals("a", g.records().get(0).stream());
            assertThrows(NotFoundException.class, () -> c.cursor("zz", "c"));
        }
    }

    @Test
    void backoffIsFullJitterUnderTheCap() {
        BadBatchClient c = BadBatchClient.create("http://127.0.0.1:1",
                ClientOptions.builder().retryBackoff(Duration.ofMillis(100)).maxBackoff(Duration.ofSeconds(1)).build());
        for (int attempt = 0; attempt < 70; attempt++) {
            long cap = Math.min(1_000_000_000L, 100_000_000L << Math.min(attempt, 20));
            for (int i = 0; i < 50; i++) {
                long d = c.backoffNanos(attempt);
                assertTrue(d >= 0 && d <= cap, attempt + ": " + d);
            }
        }
    }

    @Test
    void argumentsAreCheckedBeforeAnyRequest() {
        BadBatchClient c = BadBatchClient.create("http://127.0.0.1:1");
        assertThrows(InvalidOptionsException.class, () -> c.appendBatch("s", List.of()));
        assertThrows(InvalidOptionsException.class, () -> c.read("s", Position.earliest(), -1));
        assertThrows(InvalidOptionsException.class, () -> c.readGlobal(-1));
        assertThrows(InvalidOptionsException.class, () -> c.setCursor("s", "c", -2));
        assertThrows(InvalidStreamException.class, () -> c.read("", Position.earliest()));
        assertThrows(InvalidOptionsException.class, () -> BadBatchClient.create("ftp://x"));
        assertThrows(InvalidOptionsException.class, () -> BadBatchClient.create("localhost:8080"));
    }
}
