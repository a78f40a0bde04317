package io.badbatch.client;

/** {@code unsupported_type}: the server does not take this content type (415). */
public class UnsupportedTypeException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    UnsupportedTypeException(Details d) {
        super(d);
    }
}
