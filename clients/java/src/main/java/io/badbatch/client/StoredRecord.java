package io.badbatch.client;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Map;

/**
 * A record as read back: the record plus its {@code stream}, {@code offset}, {@code seq} (its
 * position in the global log) and {@code timestamp}. Immutable.
 */
public final class StoredRecord {
    private final String stream;
    private final long offset;
    private final long seq;
    private final Instant timestamp;
    private final String key;
    private final byte[] value;
    private final boolean json;
    private final Map<String, String> headers;

    StoredRecord(String stream, long offset, long seq, Instant timestamp, String key, byte[] value, boolean json,
            Map<String, String> headers) {
        this.stream = stream;
        this.offset = offset;
        this.seq = seq;
        this.timestamp = timestamp;
        this.key = key;
        this.value = value;
        this.json = json;
        this.headers = headers;
    }

    /** The stream's name. */
    public String stream() {
        return stream;
    }

    /** The record's position in its stream. */
    public long offset() {
        return offset;
    }

    /** The record's position in the global log. */
    public long seq() {
        return seq;
    }

    /** When the record was appended (or the timestamp its producer gave). */
    public Instant timestamp() {
        return timestamp;
    }

    /** The key, or null when the record has none. */
    public String key() {
        return key;
    }

    /** A copy of the value: the JSON text's UTF-8 bytes when {@link #isJson()}, else the bytes. */
    public byte[] value() {
        return value.clone();
    }

    /** The value decoded as UTF-8 (the JSON text itself for a JSON record). */
    public String valueAsString() {
        return new String(value, StandardCharsets.UTF_8);
    }

    /** The value's length in bytes. */
    public int valueLength() {
        return value.length;
    }

    /** Whether the record was appended as JSON (its value is JSON text). */
    public boolean isJson() {
        return json;
    }

    /** The headers (unmodifiable, never null). */
    public Map<String, String> headers() {
        return headers;
    }

    @Override
    public String toString() {
        return "StoredRecord{stream=" + stream + ", offset=" + offset + ", seq=" + seq + ", timestamp=" + timestamp
                + ", key=" + key + ", " + (json ? "json=" + valueAsString() : "bytes=" + value.length) + ", headers="
                + headers + "}";
    }
}
