package io.badbatch.client;

/** {@code unauthorized}: no token or an unknown one (401). */
public class UnauthorizedException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    UnauthorizedException(Details d) {
        super(d);
    }
}
