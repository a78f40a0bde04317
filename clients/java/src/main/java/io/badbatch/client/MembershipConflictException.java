package io.badbatch.client;

/** {@code membership_conflict}: a cluster membership change was refused (409). */
public class MembershipConflictException extends BadBatchException {
    private static final long serialVersionUID = 1L;

    MembershipConflictException(Details d) {
        super(d);
    }
}
