package io.badbatch.client;

/** {@code connection}: the server could not be reached, or the connection broke, after the client's retries. */
public class ConnectionException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    ConnectionException(Details d) {
        super(d);
    }
}
