package io.badbatch.client;

/** {@code internal}: a server bug (500), or an answer the client cannot decode. */
public class InternalException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    InternalException(Details d) {
        super(d);
    }
}
