package io.badbatch.client;

/** {@code rate_limited}: the server's rate limit (429), after the client's retries; {@link #retryAfter()} says when to come back. */
public class RateLimitedException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    RateLimitedException(Details d) {
        super(d);
    }
}
