package io.badbatch.client;

import java.util.OptionalLong;

/**
 * {@code offset_mismatch}: the append's expected last offset did not hold (409). Nothing was
 * stored. {@link #currentLastOffset()} is the stream's last offset at the time ({@code -1} for an
 * empty stream).
 */
public class OffsetMismatchException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    private final long currentLastOffset;

    OffsetMismatchException(Details d, long currentLastOffset) {
        super(d);
        this.currentLastOffset = currentLastOffset;
    }

    /** The stream's last offset when the append was refused ({@code -1}: empty); empty if the server did not say. */
    public OptionalLong currentLastOffset() {
        return currentLastOffset == Long.MIN_VALUE ? OptionalLong.empty() : OptionalLong.of(currentLastOffset);
    }
}
