package io.badbatch.client;

/** {@code stream_exists}: a create with another configuration, or a fork onto an existing stream (409). */
public class StreamExistsException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    StreamExistsException(Details d) {
        super(d);
    }
}
