package io.badbatch.client;

/** {@code invalid_options}: a bad option or argument value, reported before any request. */
public class InvalidOptionsException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    InvalidOptionsException(Details d) {
        super(d);
    }
}
