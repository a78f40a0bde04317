package io.badbatch.client;

/**
 * The result of an append: where the records went and what the acknowledgement means.
 * {@code replayed} is true when the idempotency key was a repeat and nothing was appended (the
 * result is the first call's).
 */
public final class AppendResult {
    private final String stream;
    private final long firstOffset;
    private final long lastOffset;
    private final int count;
    private final long firstSeq;
    private final long lastSeq;
    private final String durability;
    private final boolean replayed;

    AppendResult(String stream, long firstOffset, long lastOffset, int count, long firstSeq, long lastSeq,
            String durability, boolean replayed) {
        this.stream = stream;
        this.firstOffset = firstOffset;
        this.lastOffset = lastOffset;
        this.count = count;
        this.firstSeq = firstSeq;
        this.lastSeq = lastSeq;
        this.durability = durability;
        this.replayed = replayed;
    }

    public String stream() {
        return stream;
    }

    public long firstOffset() {
        return firstOffset;
    }

    public long lastOffset() {
        return lastOffset;
    }

    public int count() {
        return count;
    }

    public long firstSeq() {
        return firstSeq;
    }

    public long lastSeq() {
        return lastSeq;
    }

    /** {@code "fsynced"} under the server's default sync policy (see docs/http-api.md). */
    public String durability() {
        return durability;
    }

    /** Whether this answers a repeated idempotency key (nothing was appended this time). */
    public boolean replayed() {
        return replayed;
    }

    @Override
    public String toString() {
        return "AppendResult{stream=" + stream + ", firstOffset=" + firstOffset + ", lastOffset=" + lastOffset
                + ", count=" + count + ", firstSeq=" + firstSeq + ", lastSeq=" + lastSeq + ", durability="
                + durability + ", replayed=" + replayed + "}";
    }
}
