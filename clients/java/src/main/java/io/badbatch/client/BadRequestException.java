package io.badbatch.client;

/** {@code bad_request}: malformed input (400). */
public class BadRequestException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    BadRequestException(Details d) {
        super(d);
    }
}
