package io.badbatch.client;

/** {@code timeout}: a per-call or per-attempt deadline passed. Not to be confused with {@link java.util.concurrent.TimeoutException}. */
public class TimeoutException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    TimeoutException(Details d) {
        super(d);
    }
}
