package io.badbatch.client;

/** {@code stream_seq}: a writer's Stream-Seq label that does not sort after the stream's last one (409). */
public class StreamSeqException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    StreamSeqException(Details d) {
        super(d);
    }
}
