package io.badbatch.client;

/** {@code too_large}: a record or request above the server's limits (413). */
public class TooLargeException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    TooLargeException(Details d) {
        super(d);
    }
}
