package io.badbatch.client;

import java.util.List;

/** One page of the global log: records of all streams (each names its stream) in commit order. */
public final class GlobalPage {
    private final List<StoredRecord> records;
    private final long nextSeq;

    GlobalPage(List<StoredRecord> records, long nextSeq) {
        this.records = records;
        this.nextSeq = nextSeq;
    }

    /** The records, in seq order (unmodifiable). */
    public List<StoredRecord> records() {
        return records;
    }

    /** The seq the next page starts at. */
    public long nextSeq() {
        return nextSeq;
    }
}
