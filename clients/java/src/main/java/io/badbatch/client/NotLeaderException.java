package io.badbatch.client;

/** {@code not_leader}: a follower's redirect (307) that the client could not follow (too many hops, or https to http). */
public class NotLeaderException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    NotLeaderException(Details d) {
        super(d);
    }
}
