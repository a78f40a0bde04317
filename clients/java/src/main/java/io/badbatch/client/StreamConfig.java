package io.badbatch.client;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * A stream's configuration, for {@link BadBatchClient#createStream(String, StreamConfig)} and
 * {@link BadBatchClient#forkStream(String, String, long, StreamConfig, Duration)}. Immutable; build
 * with {@link #builder()}. {@link #DEFAULT} sets nothing: the server's defaults.
 */
public final class StreamConfig {
    /** Nothing set: content type {@code application/octet-stream}, no lifetime, open. */
    public static final StreamConfig DEFAULT = builder().build();

    private final String contentType;
    private final Duration ttl;
    private final Instant expiresAt;
    private final boolean closed;

    private StreamConfig(Builder b) {
        this.contentType = b.contentType;
        this.ttl = b.ttl;
        this.expiresAt = b.expiresAt;
        this.closed = b.closed;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The records' content type; empty: the server's default. */
    public Optional<String> contentType() {
        return Optional.ofNullable(contentType);
    }

    /** A sliding lifetime (reads and appends extend it), whole seconds; empty: none. */
    public Optional<Duration> ttl() {
        return Optional.ofNullable(ttl);
    }

    /** When the stream expires; empty: never. */
    public Optional<Instant> expiresAt() {
        return Optional.ofNullable(expiresAt);
    }

    /** Whether the stream is created closed. */
    public boolean closed() {
        return closed;
    }

    /** Builds a {@link StreamConfig}; values are checked by {@link #build()}. */
    public static final class Builder {
        private String contentType;
        private Duration ttl;
        private Instant expiresAt;
        private boolean closed;

        private Builder() {}

        /** Null: the server's default. */
        public Builder contentType(String contentType) {
            this.contentType = contentType;
            return this;
        }

        /** Whole seconds over HTTP (null: none); not with {@link #expiresAt(Instant)}. */
        public Builder ttl(Duration ttl) {
            this.ttl = ttl;
            return this;
        }

        /** Null: never. */
        public Builder expiresAt(Instant expiresAt) {
            this.expiresAt = expiresAt;
            return this;
        }

        public Builder closed(boolean closed) {
            this.closed = closed;
            return this;
        }

        /** @throws InvalidOptionsException on a bad value (a TTL that is not whole seconds, an empty content type) */
        public StreamConfig build() {
            if (contentType != null && contentType.isEmpty()) {
                throw BadBatchClient.invalid("contentType: empty (null is the server's default)");
            }
            if (ttl != null && (ttl.isNegative() || ttl.isZero() || ttl.getNano() != 0)) {
                throw BadBatchClient.invalid("ttl " + ttl + ": want a whole number of seconds, more than 0 (the HTTP API has no sub-second TTL)");
            }
            return new StreamConfig(this);
        }
    }
}
