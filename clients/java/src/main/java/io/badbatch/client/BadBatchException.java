package io.badbatch.client;

import java.time.Duration;
import java.util.Optional;

/**
 * The base of every error the client throws. It is unchecked, so that a {@link Tail} can be used
 * as an {@link java.util.Iterator} and a {@link java.util.stream.Stream}.
 *
 * <p>Each {@link ErrorKind} has its own subclass (for example {@link OffsetMismatchException}),
 * so callers may catch the kinds they handle and let the rest through. Every instance carries the
 * kind, the server's {@code code} and {@code message} and the HTTP {@code status} (0 for errors
 * made on the client's side).
 */
public class BadBatchException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final ErrorKind kind;
    private final String code;
    private final int status;
    private final String serverMessage;
    private final String requestId;
    private final Duration retryAfter;

    protected BadBatchException(ErrorKind kind, String code, String message, int status, String requestId,
            Duration retryAfter, Throwable cause) {
        super(format(code, message, status), cause);
        this.kind = kind;
        this.code = code;
        this.status = status;
        this.serverMessage = message;
        this.requestId = requestId;
        this.retryAfter = retryAfter;
    }

    protected BadBatchException(Details d) {
        this(d.kind, d.code, d.message, d.status, d.requestId, d.retryAfter, d.cause);
    }

    private static String format(String code, String message, int status) {
        return status > 0 ? code + " (" + status + "): " + message : code + ": " + message;
    }

    /** The kind of error. */
    public ErrorKind kind() {
        return kind;
    }

    /** The wire code ({@code kind().code()}, or the server's code when the client does not know it). */
    public String code() {
        return code;
    }

    /** The server's message, or the client's for client-side kinds. */
    public String serverMessage() {
        return serverMessage;
    }

    /** The HTTP status, or 0 for client-side kinds. */
    public int status() {
        return status;
    }

    /** The server's {@code X-Request-Id}, when it sent one. */
    public Optional<String> requestId() {
        return Optional.ofNullable(requestId);
    }

    /** The server's {@code Retry-After}, when it sent one. */
    public Optional<Duration> retryAfter() {
        return Optional.ofNullable(retryAfter);
    }

    /** Whether a retry of the same call may succeed (the client already retried it). */
    public boolean isTransient() {
        switch (kind) {
            case RATE_LIMITED: case UNAVAILABLE: case NO_LEADER: case CONNECTION: case TIMEOUT:
                return true;
            default:
                return false;
        }
    }

    /** What the client knows about an error, to build one. */
    static final class Details {
        ErrorKind kind;
        String code;
        String message;
        int status;
        String requestId;
        Duration retryAfter;
        long currentLastOffset = Long.MIN_VALUE;
        long producerEpoch = -1; // -1: the answer did not say
        long expectedSeq = -1;
        long receivedSeq = -1;
        Throwable cause;

        Details(ErrorKind kind, String code, String message, int status) {
            this.kind = kind;
            this.code = code;
            this.message = message;
            this.status = status;
        }
    }

    static BadBatchException of(ErrorKind kind, String message) {
        return create(new Details(kind, kind.code(), message, 0));
    }

    static BadBatchException of(ErrorKind kind, String message, Throwable cause) {
        Details d = new Details(kind, kind.code(), message, 0);
        d.cause = cause;
        return create(d);
    }

    /** Builds the subclass for the kind. */
    static BadBatchException create(Details d) {
        switch (d.kind) {
            case BAD_REQUEST: return new BadRequestException(d);
            case INVALID_STREAM: return new InvalidStreamException(d);
            case UNAUTHORIZED: return new UnauthorizedException(d);
            case FORBIDDEN: return new ForbiddenException(d);
            case NOT_FOUND: return new NotFoundException(d);
            case METHOD_NOT_ALLOWED: return new MethodNotAllowedException(d);
            case OFFSET_MISMATCH: return new OffsetMismatchException(d, d.currentLastOffset);
            case STREAM_CLOSED: return new StreamClosedException(d);
            case STREAM_EXISTS: return new StreamExistsException(d);
            case STREAM_SEQ: return new StreamSeqException(d);
            case PRODUCER_SEQ_GAP: return new ProducerSeqGapException(d);
            case PRODUCER_FENCED: return new ProducerFencedException(d);
            case MEMBERSHIP_CONFLICT: return new MembershipConflictException(d);
            case GONE: return new GoneException(d);
            case TOO_LARGE: return new TooLargeException(d);
            case UNSUPPORTED_TYPE: return new UnsupportedTypeException(d);
            case RATE_LIMITED: return new RateLimitedException(d);
            case INTERNAL: return new InternalException(d);
            case UNAVAILABLE: return new UnavailableException(d);
            case NO_LEADER: return new NoLeaderException(d);
            case NOT_LEADER: return new NotLeaderException(d);
            case NOT_CLUSTER: return new NotClusterException(d);
            case INVALID_OPTIONS: return new InvalidOptionsException(d);
            case CONNECTION: return new ConnectionException(d);
            case TIMEOUT: return new TimeoutException(d);
            default: return new BadBatchException(d);
        }
    }
}
