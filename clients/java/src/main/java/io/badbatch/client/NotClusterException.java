package io.badbatch.client;

/** {@code not_cluster}: a cluster route on a standalone server (404). */
public class NotClusterException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    NotClusterException(Details d) {
        super(d);
    }
}
