package io.badbatch.client;

/** {@code no_leader}: a cluster without a leader (503; nothing was stored), after the client's retries. */
public class NoLeaderException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    NoLeaderException(Details d) {
        super(d);
    }
}
