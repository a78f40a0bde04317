package io.badbatch.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class OptionsTest {
    @Test
    void defaultsFillWhatTheCallerLeftUnset() {
        ClientOptions o = ClientOptions.builder().token("tok-0123456789abcdef").build();
        assertEquals("tok-0123456789abcdef", o.token().orElseThrow());
        assertEquals(5, o.maxRetries());
        assertEquals(Duration.ofMillis(100), o.retryBackoff());
        assertEquals(Duration.ofSeconds(5), o.maxBackoff());
        assertEquals(Duration.ofSeconds(30), o.maxRetryAfter());
        assertEquals(Duration.ofSeconds(30), o.requestTimeout());
        assertEquals(Duration.ofSeconds(5), o.connectTimeout());
        assertEquals(Duration.ofSeconds(60), o.tailIdleTimeout());
        assertTrue(o.generateIdempotencyKeys());
        assertEquals("badbatch-java-client/" + ClientOptions.VERSION, o.userAgent());
        assertFalse(o.toString().contains("0123456789abcdef"), "the token is not printed");
        assertTrue(ClientOptions.defaults().token().isEmpty());
    }

    @Test
    void buildersDoNotShareState() {
        ClientOptions a = ClientOptions.builder().maxRetries(1).build();
        ClientOptions b = a.toBuilder().maxRetries(9).build();
        assertEquals(1, a.maxRetries());
        assertEquals(9, b.maxRetries());
        ClientOptions zero = ClientOptions.builder().maxRetries(0).build();
        assertEquals(0, zero.maxRetries(), "0 is a value, not 'unset'");
    }

    @Test
    void badValuesAreInvalidOptions() {
        assertInvalid(ClientOptions.builder().maxRetries(-1));
        assertInvalid(ClientOptions.builder().retryBackoff(Duration.ZERO));
        assertInvalid(ClientOptions.builder().maxBackoff(Duration.ofMillis(10)).retryBackoff(Duration.ofMillis(20)));
        assertInvalid(ClientOptions.builder().requestTimeout(Duration.ofSeconds(-1)));
        assertInvalid(ClientOptions.builder().connectTimeout(Duration.ZERO));
        assertInvalid(ClientOptions.builder().tailIdleTimeout(Duration.ZERO));
        assertInvalid(ClientOptions.builder().maxRetryAfter(Duration.ofSeconds(-1)));
        assertInvalid(ClientOptions.builder().token(""));
        assertInvalid(ClientOptions.builder().token("has space"));
        assertInvalid(ClientOptions.builder().userAgent(""));
    }

    private static void assertInvalid(ClientOptions.Builder b) {
        InvalidOptionsException e = assertThrows(InvalidOptionsException.class, b::build);
        assertEquals(ErrorKind.INVALID_OPTIONS, e.kind());
        assertEquals("invalid_options", e.code());
        assertEquals(0, e.status());
    }

    @Test
    void appendOptionsNoneIsAbsence() {
        assertTrue(AppendOptions.NONE.expectedLastOffset().isEmpty());
        assertTrue(AppendOptions.NONE.idempotencyKey().isEmpty());
        assertEquals(-1, AppendOptions.expectingLastOffset(-1).expectedLastOffset().getAsLong());
        assertEquals(0, AppendOptions.expectingLastOffset(0).expectedLastOffset().getAsLong());
        assertThrows(InvalidOptionsException.class, () -> AppendOptions.expectingLastOffset(-2));
        assertThrows(InvalidOptionsException.class, () -> AppendOptions.withIdempotencyKey(""));
        assertThrows(InvalidOptionsException.class, () -> AppendOptions.withIdempotencyKey("x".repeat(257)));
        assertThrows(InvalidOptionsException.class, () -> AppendOptions.withIdempotencyKey("é"));
        assertThrows(InvalidOptionsException.class, () -> AppendOptions.builder().timeout(Duration.ZERO).build());
        assertThrows(InvalidOptionsException.class, () -> Position.offset(-1));
    }

    @Test
    void generatedKeysAre128BitsHex() {
        String a = BadBatchClient.newIdempotencyKey();
        assertTrue(a.matches("[0-9a-f]{32}"), a);
        assertFalse(a.equals(BadBatchClient.newIdempotencyKey()));
    }
}
