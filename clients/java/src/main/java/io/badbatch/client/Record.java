package io.badbatch.client;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * A record to append: an optional key, a value (bytes, or JSON text that reads back as JSON),
 * headers and an optional timestamp. Immutable; the {@code with...} methods return copies.
 *
 * <pre>{@code
 * Record.json("{\"id\":1}").withKey("order-1").withHeader("source", "web");
 * Record.bytes(new byte[] {0, 1, 2});
 * }</pre>
 *
 * <p>"None" values: a null key (no key), an empty value, an empty header map, a null timestamp
 * (the server's time at append).
 */
public final class Record {
    private static final byte[] EMPTY = new byte[0];

    private final String key;
    private final byte[] value;
    private final boolean json;
    private final Map<String, String> headers;
    private final Instant timestamp;

    private Record(String key, byte[] value, boolean json, Map<String, String> headers, Instant timestamp) {
        this.key = key;
        this.value = value;
        this.json = json;
        this.headers = headers;
        this.timestamp = timestamp;
    }

    /** A record whose value is the given JSON text; it reads back as JSON (compacted). */
    public static Record json(String jsonText) {
        Objects.requireNonNull(jsonText, "jsonText");
        return new Record(null, jsonText.getBytes(StandardCharsets.UTF_8), true, Map.of(), null);
    }

    /** A record whose value is the given bytes (copied). */
    public static Record bytes(byte[] value) {
        Objects.requireNonNull(value, "value");
        return new Record(null, value.length == 0 ? EMPTY : value.clone(), false, Map.of(), null);
    }

    /** A binary record whose value is the UTF-8 bytes of the text (it reads back as bytes). */
    public static Record text(String text) {
        return bytes(text.getBytes(StandardCharsets.UTF_8));
    }

    /** A record with an empty value. */
    public static Record empty() {
        return new Record(null, EMPTY, false, Map.of(), null);
    }

    /** A copy with this key (null: no key). */
    public Record withKey(String key) {
        return new Record(key, value, json, headers, timestamp);
    }

    /** A copy with these headers (copied; replaces any previous headers). */
    public Record withHeaders(Map<String, String> headers) {
        Map<String, String> h = new LinkedHashMap<>();
        headers.forEach((k, v) -> h.put(Objects.requireNonNull(k, "header name"), Objects.requireNonNull(v, "header value")));
        return new Record(key, value, json, Collections.unmodifiableMap(h), timestamp);
    }

    /** A copy with one more header. */
    public Record withHeader(String name, String value) {
        Map<String, String> h = new LinkedHashMap<>(headers);
        h.put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
        return new Record(key, this.value, json, Collections.unmodifiableMap(h), timestamp);
    }

    /** A copy with this timestamp (null: the server's time at append). */
    public Record withTimestamp(Instant timestamp) {
        return new Record(key, value, json, headers, timestamp);
    }

    /** The key, or null. */
    public String key() {
        return key;
    }

    /** A copy of the value's bytes (the JSON text's UTF-8 bytes for a JSON record). */
    public byte[] value() {
        return value.clone();
    }

    byte[] valueNoCopy() {
        return value;
    }

    /** Whether the value is JSON text. */
    public boolean isJson() {
        return json;
    }

    /** The headers (unmodifiable, never null). */
    public Map<String, String> headers() {
        return headers;
    }

    /** The timestamp, or null for the server's time at append. */
    public Instant timestamp() {
        return timestamp;
    }
}
