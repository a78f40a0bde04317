package io.badbatch.client;

/** {@code method_not_allowed}: the route does not take this method (405). */
public class MethodNotAllowedException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    MethodNotAllowedException(Details d) {
        super(d);
    }
}
