package io.badbatch.client;

/** {@code unavailable}: the journal failed, or the server is shutting down (503), after the client's retries. */
public class UnavailableException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    UnavailableException(Details d) {
        super(d);
    }
}
