package io.badbatch.client;

import java.time.Instant;
import java.util.Objects;

/**
 * Where a read or a tail starts: {@link #earliest()} (the first retained record, the default),
 * {@link #latest()} (the next offset to be written: only new records), {@link #offset(long)} or
 * {@link #time(Instant)} (the first record whose timestamp is at or after it). Immutable.
 */
public final class Position {
    enum Type { EARLIEST, LATEST, OFFSET, TIME }

    private static final Position EARLIEST = new Position(Type.EARLIEST, 0, null);
    private static final Position LATEST = new Position(Type.LATEST, 0, null);

    final Type type;
    final long offset;
    final Instant time;

    private Position(Type type, long offset, Instant time) {
        this.type = type;
        this.offset = offset;
        this.time = time;
    }

    public static Position earliest() {
        return EARLIEST;
    }

    public static Position latest() {
        return LATEST;
    }

    /** @throws InvalidOptionsException for a negative offset */
    public static Position offset(long offset) {
        if (offset < 0) {
            throw (InvalidOptionsException) BadBatchException.of(ErrorKind.INVALID_OPTIONS, "offset " + offset + ": want 0 or more");
        }
        return new Position(Type.OFFSET, offset, null);
    }

    public static Position time(Instant time) {
        return new Position(Type.TIME, 0, Objects.requireNonNull(time, "time"));
    }

    /** The query parameter this position is sent as ({@code from=...} or {@code from_time=...}). */
    String query() {
        switch (type) {
            case EARLIEST: return "from=earliest";
            case LATEST: return "from=latest";
            case OFFSET: return "from=" + offset;
            default: return "from_time=" + time.toString();
        }
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Position)) {
            return false;
        }
        Position p = (Position) o;
        return type == p.type && offset == p.offset && Objects.equals(time, p.time);
    }

    @Override
    public int hashCode() {
        return Objects.hash(type, offset, time);
    }

    @Override
    public String toString() {
        switch (type) {
            case EARLIEST: return "earliest";
            case LATEST: return "latest";
            case OFFSET: return Long.toString(offset);
            default: return time.toString();
        }
    }
}
