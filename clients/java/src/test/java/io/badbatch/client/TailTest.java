package io.badbatch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The tail against a scripted SSE server: resume without gap or duplicate, idle reconnects, errors, close. */
class TailTest {
    private static ClientOptions fast() {
        return ClientOptions.builder().retryBackoff(Duration.ofMillis(5)).maxBackoff(Duration.ofMillis(20)).build();
    }

    static String event(long offset) {
        return "id: " + offset + "\ndata: {\"offset\":" + offset + ",\"seq\":" + offset
                + ",\"timestamp\":\"2026-01-02T03:04:05Z\",\"value\":" + offset + "}\n\n";
    }

    static OutputStream sse(HttpExchange ex) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "text/event-stream");
        ex.sendResponseHeaders(200, 0);
        return ex.getResponseBody();
    }

    static void send(OutputStream o, String s) throws IOException {
        o.write(s.getBytes(StandardCharsets.UTF_8));
        o.flush();
    }

    @Test
    void resumesAfterABrokenConnectionWithoutGapOrDuplicate() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            OutputStream o = sse(ex);
            if (n == 1) {
                send(o, ": hello\n\n" + event(0) + event(1) + "id: 2\ndata: {\"offset\":2,");
                return; // cut mid-event
            }
            // The resume repeats what the client already has: it must skip it.
            send(o, event(1) + event(2) + event(3));
            Thread.sleep(5000);
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            try (Tail t = c.tail("s", Position.earliest())) {
                List<Long> got = t.stream().limit(4).map(StoredRecord::offset).collect(Collectors.toList());
                assertEquals(List.of(0L, 1L, 2L, 3L), got);
            }
            assertEquals("from=earliest", s.requests.get(0).getRequestURI().getQuery());
            assertNull(s.header(0, "Last-Event-ID"));
            assertEquals("1", s.header(1, "Last-Event-ID"));
            assertEquals("text/event-stream", s.header(1, "Accept"));
        }
    }

    @Test
    void anIdleConnectionIsReopened() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            OutputStream o = sse(ex);
            if (n == 1) {
                send(o, event(0));
            } else {
                send(o, event(1));
            }
            Thread.sleep(5000); // silent
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast().toBuilder().tailIdleTimeout(Duration.ofMillis(300)).build());
            try (Tail t = c.tail("s", Position.offset(0))) {
                assertEquals(0, t.next().offset());
                StoredRecord r = t.poll(Duration.ofSeconds(5));
                assertEquals(1, r.offset());
                assertEquals("1", r.valueAsString());
            }
            assertEquals("0", s.header(1, "Last-Event-ID"));
        }
    }

    @Test
    void keepAliveCommentsKeepAnIdleConnection() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            OutputStream o = sse(ex);
            for (int i = 0; i < 10; i++) {
                send(o, ": keep-alive\n\n");
                Thread.sleep(100);
            }
            send(o, event(0));
            Thread.sleep(5000);
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast().toBuilder().tailIdleTimeout(Duration.ofMillis(400)).build());
            try (Tail t = c.tail("s", Position.earliest())) {
                assertEquals(0, t.poll(Duration.ofSeconds(5)).offset());
            }
            assertEquals(1, s.requests.size());
        }
    }

    @Test
    void aPermanentErrorEndsTheTail() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> FakeServer.error(ex, 404, "not_found"))) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            assertThrows(NotFoundException.class, () -> c.tail("s", Position.earliest()));
            assertEquals(1, s.requests.size());
        }
        try (FakeServer s = new FakeServer((ex, n) -> {
            OutputStream o = sse(ex);
            send(o, event(0) + "event: error\ndata: {\"error\":{\"code\":\"gone\",\"message\":\"below retention\"}}\n\n");
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            Tail t = c.tail("s", Position.earliest());
            assertEquals(0, t.next().offset());
            GoneException e = assertThrows(GoneException.class, t::hasNext);
            assertEquals(410, e.status());
            assertThrows(GoneException.class, t::hasNext, "the error stays");
            t.close();
        }
    }

    @Test
    void transientAnswersAreRetried() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            if (n == 2 || n == 3) {
                FakeServer.error(ex, 503, "unavailable");
                return;
            }
            OutputStream o = sse(ex);
            send(o, n == 1 ? event(0) : event(0) + event(1));
            if (n > 1) {
                Thread.sleep(5000);
            }
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            try (Tail t = c.tail("s", Position.earliest())) {
                assertEquals(0, t.next().offset());
                assertEquals(1, t.poll(Duration.ofSeconds(5)).offset());
            }
            assertEquals(4, s.requests.size());
        }
    }

    @Test
    void closeEndsABlockedConsumer() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            sse(ex);
            Thread.sleep(5000);
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            Tail t = c.tail("s", Position.earliest());
            AtomicReference<Object> result = new AtomicReference<>();
            CountDownLatch done = new CountDownLatch(1);
            Thread consumer = new Thread(() -> {
                try {
                    result.set(t.hasNext());
                } catch (RuntimeException e) {
                    result.set(e);
                }
                done.countDown();
            });
            consumer.start();
            Thread.sleep(200);
            t.close();
            assertTrue(done.await(5, TimeUnit.SECONDS));
            assertEquals(false, result.get());
            assertFalse(t.hasNext());
            assertTrue(t.isClosed());
            assertNull(t.poll(Duration.ofMillis(10)));
        }
    }

    @Test
    void aPublisherDeliversOnDemandAndCancels() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            if (ex.getRequestURI().getPath().equals("/v1/streams/missing/records")) {
                FakeServer.error(ex, 404, "not_found");
                return;
            }
            OutputStream o = sse(ex);
            send(o, event(0) + event(1) + event(2) + event(3));
            Thread.sleep(5000);
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            java.util.concurrent.BlockingQueue<Object> got = new java.util.concurrent.LinkedBlockingQueue<>();
            AtomicReference<java.util.concurrent.Flow.Subscription> sub = new AtomicReference<>();
            java.util.concurrent.Flow.Subscriber<StoredRecord> subscriber = new java.util.concurrent.Flow.Subscriber<>() {
                @Override
                public void onSubscribe(java.util.concurrent.Flow.Subscription subscription) {
                    sub.set(subscription);
                    subscription.request(2);
                }

                @Override
                public void onNext(StoredRecord item) {
                    got.add(item.offset());
                }

                @Override
                public void onError(Throwable throwable) {
                    got.add(throwable);
                }

                @Override
                public void onComplete() {
                    got.add("complete");
                }
            };
            c.tailPublisher("s", Position.earliest()).subscribe(subscriber);
            assertEquals(0L, got.poll(5, TimeUnit.SECONDS));
            assertEquals(1L, got.poll(5, TimeUnit.SECONDS));
            assertNull(got.poll(300, TimeUnit.MILLISECONDS), "no demand, no record");
            sub.get().request(1);
            assertEquals(2L, got.poll(5, TimeUnit.SECONDS));
            sub.get().cancel();
            sub.get().request(5);
            assertNull(got.poll(300, TimeUnit.MILLISECONDS), "cancelled");

            c.tailPublisher("missing", Position.earliest()).subscribe(subscriber);
            assertTrue(got.poll(5, TimeUnit.SECONDS) instanceof NotFoundException);
        }
    }

    @Test
    void latestIsPinnedToAnOffset() throws Exception {
        try (FakeServer s = new FakeServer((ex, n) -> {
            if (ex.getRequestURI().getPath().equals("/v1/streams/s")) {
                FakeServer.json(ex, 200, "{\"stream\":\"s\",\"first_offset\":0,\"next_offset\":42,\"records\":42,\"bytes\":1,"
                        + "\"last_timestamp\":null}");
                return;
            }
            send(sse(ex), event(42));
            Thread.sleep(5000);
        })) {
            BadBatchClient c = BadBatchClient.create(s.url(), fast());
            try (Tail t = c.tail("s", Position.latest())) {
                assertEquals(42, t.next().offset());
            }
            assertEquals("from=42", s.requests.get(1).getRequestURI().getQuery());
        }
    }
}
