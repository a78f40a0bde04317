package io.badbatch.client;

/** {@code invalid_stream}: a bad stream or cursor name (400). */
public class InvalidStreamException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    InvalidStreamException(Details d) {
        super(d);
    }
}
