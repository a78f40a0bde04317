package io.badbatch.client;

import java.time.Instant;
import java.util.Optional;

/** What the server knows about one stream. */
public final class StreamInfo {
    private final String stream;
    private final long firstOffset;
    private final long nextOffset;
    private final long records;
    private final long bytes;
    private final Instant lastTimestamp;

    StreamInfo(String stream, long firstOffset, long nextOffset, long records, long bytes, Instant lastTimestamp) {
        this.stream = stream;
        this.firstOffset = firstOffset;
        this.nextOffset = nextOffset;
        this.records = records;
        this.bytes = bytes;
        this.lastTimestamp = lastTimestamp;
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

    @Override
    public String toString() {
        return "StreamInfo{stream=" + stream + ", firstOffset=" + firstOffset + ", nextOffset=" + nextOffset
                + ", records=" + records + ", bytes=" + bytes + ", lastTimestamp=" + lastTimestamp + "}";
    }
}
