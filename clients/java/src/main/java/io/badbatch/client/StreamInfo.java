package io.badbatch.client;

import java.time.Instant;
import java.util.Optional;
import java.util.OptionalLong;

/** What the server knows about one stream. */
public final class StreamInfo {
    private final String stream;
    private final long firstOffset;
    private final long nextOffset;
    private final long records;
    private final long bytes;
    private final Instant lastTimestamp;
    private final String contentType;
    private final boolean closed;
    private final long ttlSeconds; // 0: none
    private final Instant expiresAt;
    private final String forkedFrom;
    private final long forkOffset;

    StreamInfo(String stream, long firstOffset, long nextOffset, long records, long bytes, Instant lastTimestamp) {
        this(stream, firstOffset, nextOffset, records, bytes, lastTimestamp, null, false, 0, null, null, 0);
    }

    StreamInfo(String stream, long firstOffset, long nextOffset, long records, long bytes, Instant lastTimestamp,
            String contentType, boolean closed, long ttlSeconds, Instant expiresAt, String forkedFrom, long forkOffset) {
        this.stream = stream;
        this.firstOffset = firstOffset;
        this.nextOffset = nextOffset;
        this.records = records;
        this.bytes = bytes;
        this.lastTimestamp = lastTimestamp;
        this.contentType = contentType;
        this.closed = closed;
        this.ttlSeconds = ttlSeconds;
        this.expiresAt = expiresAt;
        this.forkedFrom = forkedFrom;
        this.forkOffset = forkOffset;
    }

    public String stream() {
        return stream;
    }

    /** The first retained offset. */
    public long firstOffset() {
        return firstOffset;
    }

    /** The offset the next append gets. */
    public long nextOffset() {
        return nextOffset;
    }

    /** The number of retained records. */
    public long records() {
        return records;
    }

    /** The retained records' size in bytes. */
    public long bytes() {
        return bytes;
    }

    /** The last record's timestamp; empty for an empty stream. */
    public Optional<Instant> lastTimestamp() {
        return Optional.ofNullable(lastTimestamp);
    }

    /** The stream's content type; empty from a server without the stream lifecycle. */
    public Optional<String> contentType() {
        return Optional.ofNullable(contentType);
    }

    /** Whether the stream is closed (takes no more appends). */
    public boolean closed() {
        return closed;
    }

    /** The stream's sliding lifetime in seconds; empty: none. */
    public OptionalLong ttlSeconds() {
        return ttlSeconds > 0 ? OptionalLong.of(ttlSeconds) : OptionalLong.empty();
    }

    /** When the stream expires; empty: never. */
    public Optional<Instant> expiresAt() {
        return Optional.ofNullable(expiresAt);
    }

    /** The stream a fork was forked from; empty for a stream that is not a fork. */
    public Optional<String> forkedFrom() {
        return Optional.ofNullable(forkedFrom);
    }

    /** A fork's offsets below this are its source's records; empty for a stream that is not a fork. */
    public OptionalLong forkOffset() {
        return forkedFrom != null ? OptionalLong.of(forkOffset) : OptionalLong.empty();
    }

    @Override
    public String toString() {
        return "StreamInfo{stream=" + stream + ", firstOffset=" + firstOffset + ", nextOffset=" + nextOffset
                + ", records=" + records + ", bytes=" + bytes + ", lastTimestamp=" + lastTimestamp
                + ", contentType=" + contentType + ", closed=" + closed + ", ttlSeconds=" + ttlSeconds
                + ", expiresAt=" + expiresAt + ", forkedFrom=" + forkedFrom + ", forkOffset=" + forkOffset + "}";
    }
}
