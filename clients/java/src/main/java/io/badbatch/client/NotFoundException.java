package io.badbatch.client;

/** {@code not_found}: a stream or cursor that was never written (404). */
public class NotFoundException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    NotFoundException(Details d) {
        super(d);
    }
}
