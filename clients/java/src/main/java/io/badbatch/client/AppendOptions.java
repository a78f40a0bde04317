package io.badbatch.client;

import java.time.Duration;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * Options of one append. Immutable; build with {@link #builder()}. {@link #NONE} is no condition,
 * no caller key and the client's default timeouts.
 *
 * <p>"None" is the absence of a value: {@link #expectedLastOffset()} and
 * {@link #idempotencyKey()} answer empty when the caller set nothing.
 */
public final class AppendOptions {
    /** No condition, no key, default timeouts. */
    public static final AppendOptions NONE = builder().build();

    private final long expectedLastOffset;
    private final boolean hasExpectedLastOffset;
    private final String idempotencyKey;
    private final Producer producer;
    private final boolean close;
    private final String streamSeq;
    private final Duration timeout;

    private AppendOptions(Builder b) {
        this.expectedLastOffset = b.expectedLastOffset;
        this.hasExpectedLastOffset = b.hasExpectedLastOffset;
        this.idempotencyKey = b.idempotencyKey;
        this.producer = b.producer;
        this.close = b.close;
        this.streamSeq = b.streamSeq;
        this.timeout = b.timeout;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Shorthand: only an expected last offset ({@code -1}: the stream must be empty). */
    public static AppendOptions expectingLastOffset(long offset) {
        return builder().expectedLastOffset(offset).build();
    }

    /** Shorthand: only an idempotency key. */
    public static AppendOptions withIdempotencyKey(String key) {
        return builder().idempotencyKey(key).build();
    }

    /** Append only if the stream's last offset is this ({@code -1}: empty); empty: no condition. */
    public OptionalLong expectedLastOffset() {
        return hasExpectedLastOffset ? OptionalLong.of(expectedLastOffset) : OptionalLong.empty();
    }

    /** The caller's idempotency key; empty: none (the client may generate one). */
    public Optional<String> idempotencyKey() {
        return Optional.ofNullable(idempotencyKey);
    }

    /** The idempotent producer's id, epoch and seq; empty: none. */
    public Optional<Producer> producer() {
        return Optional.ofNullable(producer);
    }

    /** Whether the append closes the stream, atomically with its records. */
    public boolean close() {
        return close;
    }

    /** The writer's sequence label (the {@code Stream-Seq} header); empty: none. */
    public Optional<String> streamSeq() {
        return Optional.ofNullable(streamSeq);
    }

    /** The whole call's deadline, retries included; empty: no deadline beyond the per-attempt timeouts. */
    public Optional<Duration> timeout() {
        return Optional.ofNullable(timeout);
    }

    /** Builds {@link AppendOptions}; values are checked by {@link #build()}. */
    public static final class Builder {
        private long expectedLastOffset;
        private boolean hasExpectedLastOffset;
        private String idempotencyKey;
        private Producer producer;
        private boolean close;
        private String streamSeq;
        private Duration timeout;

        private Builder() {}

        public Builder expectedLastOffset(long offset) {
            this.expectedLastOffset = offset;
            this.hasExpectedLastOffset = true;
            return this;
        }

        /** Removes a previously set condition. */
        public Builder noExpectedLastOffset() {
            this.hasExpectedLastOffset = false;
            return this;
        }

        /** 1 to 256 printable ASCII characters (0x20-0x7E), checked by {@link #build()}; null: none. */
        public Builder idempotencyKey(String key) {
            this.idempotencyKey = key;
            return this;
        }

        /**
         * An idempotent producer's append (null: none): a repeat of an accepted seq stores nothing
         * and answers the first result ({@code replayed}), a gap is {@link ProducerSeqGapException},
         * an older epoch {@link ProducerFencedException}. Such an append is safe to retry.
         */
        public Builder producer(Producer producer) {
            this.producer = producer;
            return this;
        }

        /** Close the stream once these records are stored, atomically with them. */
        public Builder close(boolean close) {
            this.close = close;
            return this;
        }

        /**
         * A writer's sequence label, sent as {@code Stream-Seq} (1 to 256 printable ASCII
         * characters; null: none): it must sort after the stream's last one, byte by byte, else
         * {@link StreamSeqException} and nothing is stored.
         */
        public Builder streamSeq(String streamSeq) {
            this.streamSeq = streamSeq;
            return this;
        }

        /** The call's overall deadline (null: none). */
        public Builder timeout(Duration timeout) {
            this.timeout = timeout;
            return this;
        }

        /** @throws InvalidOptionsException on a bad value */
        public AppendOptions build() {
            if (hasExpectedLastOffset && expectedLastOffset < -1) {
                throw (InvalidOptionsException) BadBatchException.of(ErrorKind.INVALID_OPTIONS,
                        "expectedLastOffset " + expectedLastOffset + ": want -1 or more");
            }
            checkHeaderValue("idempotencyKey", idempotencyKey);
            checkHeaderValue("streamSeq", streamSeq);
            if (timeout != null && (timeout.isNegative() || timeout.isZero())) {
                throw (InvalidOptionsException) BadBatchException.of(ErrorKind.INVALID_OPTIONS, "timeout: want more than 0");
            }
            return new AppendOptions(this);
        }

        /** A header value: null (none), or 1 to 256 printable ASCII characters. */
        private static void checkHeaderValue(String name, String v) {
            if (v == null) {
                return;
            }
            int n = v.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
            if (n == 0 || n > 256) {
                throw (InvalidOptionsException) BadBatchException.of(ErrorKind.INVALID_OPTIONS,
                        name + ": want 1 to 256 bytes, got " + n);
            }
            for (int i = 0; i < v.length(); i++) {
                char c = v.charAt(i);
                if (c < 0x20 || c > 0x7e) {
                    throw (InvalidOptionsException) BadBatchException.of(ErrorKind.INVALID_OPTIONS,
                            name + ": want printable ASCII (it travels in a header)");
                }
            }
        }
    }
}
