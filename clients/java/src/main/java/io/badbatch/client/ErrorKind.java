package io.badbatch.client;

/**
 * The kind of a {@link BadBatchException}: one per wire error code of the HTTP API, plus three
 * made on the client's side ({@link #INVALID_OPTIONS}, {@link #CONNECTION}, {@link #TIMEOUT}).
 * See docs/clients/README.md, Errors.
 */
public enum ErrorKind {
    BAD_REQUEST("bad_request", 400),
    INVALID_STREAM("invalid_stream", 400),
    UNAUTHORIZED("unauthorized", 401),
    FORBIDDEN("forbidden", 403),
    NOT_FOUND("not_found", 404),
    METHOD_NOT_ALLOWED("method_not_allowed", 405),
    OFFSET_MISMATCH("offset_mismatch", 409),
    STREAM_CLOSED("stream_closed", 409),
    STREAM_EXISTS("stream_exists", 409),
    STREAM_SEQ("stream_seq", 409),
    PRODUCER_SEQ_GAP("producer_seq_gap", 409),
    PRODUCER_FENCED("producer_fenced", 403),
    MEMBERSHIP_CONFLICT("membership_conflict", 409),
    GONE("gone", 410),
    TOO_LARGE("too_large", 413),
    UNSUPPORTED_TYPE("unsupported_type", 415),
    RATE_LIMITED("rate_limited", 429),
    INTERNAL("internal", 500),
    UNAVAILABLE("unavailable", 503),
    NO_LEADER("no_leader", 503),
    NOT_LEADER("not_leader", 307),
    NOT_CLUSTER("not_cluster", 404),
    INVALID_OPTIONS("invalid_options", 0),
    CONNECTION("connection", 0),
    TIMEOUT("timeout", 0);

    private final String code;
    private final int status;

    ErrorKind(String code, int status) {
        this.code = code;
        this.status = status;
    }

    /** The wire code, e.g. {@code "offset_mismatch"}. */
    public String code() {
        return code;
    }

    /** The HTTP status the server answers with this kind (0 for client-side kinds). */
    public int defaultStatus() {
        return status;
    }

    /** The kind for a wire code, or null when the code is unknown. */
    public static ErrorKind fromCode(String code) {
        if (code == null) {
            return null;
        }
        for (ErrorKind k : values()) {
            if (k.code.equals(code)) {
                return k;
            }
        }
        return null;
    }

    /** The kind a status stands for when the answer carries no (known) code. */
    static ErrorKind fromStatus(int status) {
        switch (status) {
            case 400: return BAD_REQUEST;
            case 401: return UNAUTHORIZED;
            case 403: return FORBIDDEN;
            case 404: return NOT_FOUND;
            case 405: return METHOD_NOT_ALLOWED;
            case 409: return OFFSET_MISMATCH;
            case 410: return GONE;
            case 413: return TOO_LARGE;
            case 415: return UNSUPPORTED_TYPE;
            case 429: return RATE_LIMITED;
            case 502: case 503: case 504: return UNAVAILABLE;
            case 307: return NOT_LEADER;
            default: return INTERNAL;
        }
    }
}
