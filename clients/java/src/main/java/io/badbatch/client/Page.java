package io.badbatch.client;

import java.util.List;

/** One page of a stream: its records and where the next page starts. */
public final class Page {
    private final List<StoredRecord> records;
    private final long nextOffset;

    Page(List<StoredRecord> records, long nextOffset) {
        this.records = records;
        this.nextOffset = nextOffset;
    }

    /** The records, in offset order (unmodifiable; empty at the live end). */
    public List<StoredRecord> records() {
        return records;
    }

    /** The offset the next page starts at. */
    public long nextOffset() {
        return nextOffset;
    }
}
