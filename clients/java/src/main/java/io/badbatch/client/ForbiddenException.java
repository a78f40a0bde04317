package io.badbatch.client;

/** {@code forbidden}: the token lacks the permission or the stream (403). */
public class ForbiddenException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    ForbiddenException(Details d) {
        super(d);
    }
}
