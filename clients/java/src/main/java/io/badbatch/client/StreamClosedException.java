package io.badbatch.client;

/** {@code stream_closed}: an append to a closed stream (409). Nothing was stored. */
public class StreamClosedException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    StreamClosedException(Details d) {
        super(d);
    }
}
