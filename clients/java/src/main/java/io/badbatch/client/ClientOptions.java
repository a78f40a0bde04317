package io.badbatch.client;

import java.time.Duration;
import java.util.Optional;

/**
 * The client's options. Immutable: build with {@link #builder()}, set only what you want;
 * {@link Builder#build()} fills in the defaults and validates every value
 * ({@link InvalidOptionsException}). {@link #defaults()} is every default.
 *
 * <table>
 * <caption>Options and defaults</caption>
 * <tr><th>option</th><th>default</th></tr>
 * <tr><td>token</td><td>none</td></tr>
 * <tr><td>maxRetries</td><td>5 (0: never)</td></tr>
 * <tr><td>retryBackoff</td><td>100 ms, doubled per retry, full jitter</td></tr>
 * <tr><td>maxBackoff</td><td>5 s</td></tr>
 * <tr><td>maxRetryAfter</td><td>30 s (a longer Retry-After is not waited for)</td></tr>
 * <tr><td>requestTimeout</td><td>30 s (one attempt, whole answer; not tails)</td></tr>
 * <tr><td>connectTimeout</td><td>5 s</td></tr>
 * <tr><td>tailIdleTimeout</td><td>60 s</td></tr>
 * <tr><td>generateIdempotencyKeys</td><td>true</td></tr>
 * <tr><td>userAgent</td><td>badbatch-java-client/VERSION</td></tr>
 * </table>
 */
public final class ClientOptions {
    /** This client's version. */
    public static final String VERSION = "0.1.0";

    private final String token;
    private final int maxRetries;
    private final Duration retryBackoff;
    private final Duration maxBackoff;
    private final Duration maxRetryAfter;
    private final Duration requestTimeout;
    private final Duration connectTimeout;
    private final Duration tailIdleTimeout;
    private final boolean generateIdempotencyKeys;
    private final String userAgent;

    private ClientOptions(Builder b) {
        this.token = b.token;
        this.maxRetries = b.maxRetries != null ? b.maxRetries : 5;
        this.retryBackoff = b.retryBackoff != null ? b.retryBackoff : Duration.ofMillis(100);
        this.maxBackoff = b.maxBackoff != null ? b.maxBackoff : Duration.ofSeconds(5);
        this.maxRetryAfter = b.maxRetryAfter != null ? b.maxRetryAfter : Duration.ofSeconds(30);
        this.requestTimeout = b.requestTimeout != null ? b.requestTimeout : Duration.ofSeconds(30);
        this.connectTimeout = b.connectTimeout != null ? b.connectTimeout : Duration.ofSeconds(5);
        this.tailIdleTimeout = b.tailIdleTimeout != null ? b.tailIdleTimeout : Duration.ofSeconds(60);
        this.generateIdempotencyKeys = b.generateIdempotencyKeys != null ? b.generateIdempotencyKeys : true;
        this.userAgent = b.userAgent != null ? b.userAgent : "badbatch-java-client/" + VERSION;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Every option at its default. */
    public static ClientOptions defaults() {
        return builder().build();
    }

    /** A builder holding these options, to change some. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.token = token;
        b.maxRetries = maxRetries;
        b.retryBackoff = retryBackoff;
        b.maxBackoff = maxBackoff;
        b.maxRetryAfter = maxRetryAfter;
        b.requestTimeout = requestTimeout;
        b.connectTimeout = connectTimeout;
        b.tailIdleTimeout = tailIdleTimeout;
        b.generateIdempotencyKeys = generateIdempotencyKeys;
        b.userAgent = userAgent;
        return b;
    }

    /** The bearer token; empty: none. */
    public Optional<String> token() {
        return Optional.ofNullable(token);
    }

    public int maxRetries() {
        return maxRetries;
    }

    public Duration retryBackoff() {
        return retryBackoff;
    }

    public Duration maxBackoff() {
        return maxBackoff;
    }

    public Duration maxRetryAfter() {
        return maxRetryAfter;
    }

    public Duration requestTimeout() {
        return requestTimeout;
    }

    public Duration connectTimeout() {
        return connectTimeout;
    }

    public Duration tailIdleTimeout() {
        return tailIdleTimeout;
    }

    public boolean generateIdempotencyKeys() {
        return generateIdempotencyKeys;
    }

    public String userAgent() {
        return userAgent;
    }

    @Override
    public String toString() {
        return "ClientOptions{token=" + (token == null ? "none" : "***") + ", maxRetries=" + maxRetries
                + ", retryBackoff=" + retryBackoff + ", maxBackoff=" + maxBackoff + ", maxRetryAfter=" + maxRetryAfter
                + ", requestTimeout=" + requestTimeout + ", connectTimeout=" + connectTimeout + ", tailIdleTimeout="
                + tailIdleTimeout + ", generateIdempotencyKeys=" + generateIdempotencyKeys + ", userAgent=" + userAgent
                + "}";
    }

    /** Collects the options the caller sets; unset ones take their defaults in {@link #build()}. */
    public static final class Builder {
        private String token;
        private Integer maxRetries;
        private Duration retryBackoff;
        private Duration maxBackoff;
        private Duration maxRetryAfter;
        private Duration requestTimeout;
        private Duration connectTimeout;
        private Duration tailIdleTimeout;
        private Boolean generateIdempotencyKeys;
        private String userAgent;

        private Builder() {}

        /** The bearer token (null: none). */
        public Builder token(String token) {
            this.token = token;
            return this;
        }

        public Builder maxRetries(int maxRetries) {
            this.maxRetries = maxRetries;
            return this;
        }

        public Builder retryBackoff(Duration d) {
            this.retryBackoff = d;
            return this;
        }

        public Builder maxBackoff(Duration d) {
            this.maxBackoff = d;
            return this;
        }

        public Builder maxRetryAfter(Duration d) {
            this.maxRetryAfter = d;
            return this;
        }

        public Builder requestTimeout(Duration d) {
            this.requestTimeout = d;
            return this;
        }

        public Builder connectTimeout(Duration d) {
            this.connectTimeout = d;
            return this;
        }

        public Builder tailIdleTimeout(Duration d) {
            this.tailIdleTimeout = d;
            return this;
        }

        public Builder generateIdempotencyKeys(boolean on) {
            this.generateIdempotencyKeys = on;
            return this;
        }

        public Builder userAgent(String ua) {
            this.userAgent = ua;
            return this;
        }

        /**
         * Fills in the defaults and validates.
         *
         * @throws InvalidOptionsException on a bad value
         */
        public ClientOptions build() {
            ClientOptions o = new ClientOptions(this);
            if (o.token != null) {
                if (o.token.isEmpty()) {
                    throw invalid("token: empty (leave it unset for none)");
                }
                for (int i = 0; i < o.token.length(); i++) {
                    char c = o.token.charAt(i);
                    if (c <= 0x20 || c > 0x7e) {
                        throw invalid("token: want printable ASCII without spaces");
                    }
                }
            }
            if (o.maxRetries < 0) {
                throw invalid("maxRetries " + o.maxRetries + ": want 0 or more");
            }
            positive("retryBackoff", o.retryBackoff);
            positive("maxBackoff", o.maxBackoff);
            if (o.maxBackoff.compareTo(o.retryBackoff) < 0) {
                throw invalid("maxBackoff " + o.maxBackoff + " is below retryBackoff " + o.retryBackoff);
            }
            if (o.maxRetryAfter.isNegative()) {
                throw invalid("maxRetryAfter: want 0 or more");
            }
            positive("requestTimeout", o.requestTimeout);
            positive("connectTimeout", o.connectTimeout);
            positive("tailIdleTimeout", o.tailIdleTimeout);
            if (o.userAgent.isEmpty()) {
                throw invalid("userAgent: empty");
            }
            return o;
        }

        private static void positive(String name, Duration d) {
            if (d.isNegative() || d.isZero()) {
                throw invalid(name + " " + d + ": want more than 0");
            }
        }

        private static InvalidOptionsException invalid(String msg) {
            return (InvalidOptionsException) BadBatchException.of(ErrorKind.INVALID_OPTIONS, msg);
        }
    }
}
